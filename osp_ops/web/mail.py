"""Sending the portal's mail: a small Protocol, and the SMTP implementation (the only
place the portal talks SMTP)."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from typing import Protocol

from osp_ops.domain.errors import TemporaryError
from osp_ops.settings import PortalSettings


class Mailer(Protocol):
    """Something that delivers one plain-text email."""

    def send(self, *, to: str, subject: str, body: str) -> None:
        """Deliver the message or raise TemporaryError."""


class SmtpMailer:
    """Mail through the SMTP server of the portal settings."""

    def __init__(self, settings: PortalSettings) -> None:
        self.settings = settings

    def send(self, *, to: str, subject: str, body: str) -> None:
        """Deliver one message (TemporaryError when the server cannot be reached or refuses)."""
        s = self.settings
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = s.mail_from, to, subject
        msg.set_content(body)
        try:
            with smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=15) as smtp:
                if s.smtp_starttls:
                    smtp.starttls()
                if s.smtp_user and s.smtp_password is not None:
                    smtp.login(s.smtp_user, s.smtp_password.get_secret_value())
                smtp.send_message(msg)
        except (OSError, smtplib.SMTPException) as e:
            raise TemporaryError(
                f"cannot send mail through {s.smtp_host}:{s.smtp_port}: {e}"
            ) from e
