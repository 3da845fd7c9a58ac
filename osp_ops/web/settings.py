"""Settings of the self-service portal: public address, SMTP, consent text, limits.

From environment variables ``OSP_OPS_PORTAL_<FIELD>`` (``OSP_OPS_PORTAL_SMTP_HOST``...)
over the defaults below; the operator settings (state DB, base domain, platform) stay
those of ``osp_ops.settings``.
"""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class PortalSettings(BaseSettings):
    """Effective portal settings."""

    model_config = SettingsConfigDict(env_prefix="OSP_OPS_PORTAL_", extra="forbid", frozen=True)

    public_url: str = Field(
        "http://127.0.0.1:8080", description="The portal's address, used in emailed links."
    )
    smtp_host: str = Field("127.0.0.1", description="SMTP server that sends the portal's mail.")
    smtp_port: int = Field(25, ge=1, le=65535)
    smtp_starttls: bool = Field(False, description="Upgrade the SMTP connection with STARTTLS.")
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    mail_from: str = Field("portal@localhost", description="Sender of the portal's mail.")
    ops_email: str | None = Field(None, description="Told of every confirmed request.")
    consent_version: str = Field("2026-01", description="Version of the consent text shown.")
    dns_target: str | None = Field(
        None, description="CNAME target for a city's own domain (default: the base domain)."
    )
    requests_per_ip_per_hour: int = Field(5, ge=1, description="Requests one address may make.")
    requests_per_email_per_hour: int = Field(3, ge=1)
    posts_per_ip_per_hour: int = Field(60, ge=1, description="Form posts, valid or not.")
    logins_per_15_minutes: int = Field(5, ge=1, description="Login attempts per address and user.")

    @property
    def secure_cookies(self) -> bool:
        """Cookies carry the Secure flag when the portal is served over HTTPS."""
        return self.public_url.startswith("https://")
