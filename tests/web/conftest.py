"""Portal tests: a real SMTP server (aiosmtpd) started by the test, a real state DB
(SQLite in the test's directory) and the engine context around it."""

from __future__ import annotations

import email
import email.policy
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient

from osp_ops.engine.context import Context, build_context
from osp_ops.platforms.fake import FakePlatform
from osp_ops.settings import Settings
from osp_ops.web.app import create_app
from osp_ops.web.settings import PortalSettings


def free_port() -> int:
    """A TCP port free on the loopback now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Inbox:
    """Messages the test's SMTP server received."""

    messages: list[Message] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.messages.append(
                email.message_from_bytes(envelope.original_content, policy=email.policy.default)
            )
        return "250 OK"

    def to(self, address: str) -> list[Message]:
        """Messages for ``address``, oldest first."""
        with self.lock:
            return [m for m in self.messages if m["To"] == address]

    @staticmethod
    def body(message: Message) -> str:
        """The text of a plain message."""
        payload = message.get_payload(decode=True)
        assert isinstance(payload, bytes)
        return payload.decode(message.get_content_charset() or "utf-8")

    def links(self, address: str) -> list[str]:
        """Every http link in the mail to ``address``."""
        return [u for m in self.to(address) for u in re.findall(r"http\S+", self.body(m))]


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    """A real SMTP server on the loopback; yields its inbox and port."""
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


@pytest.fixture
def ctx(tmp_path: Path) -> Context:
    settings = Settings(
        data_dir=tmp_path / "data",
        tenants_dir=tmp_path / "tenants",
        base_domain="participer.example.org",
        retry_base_delay=0,
    )
    fake = FakePlatform()
    return build_context(settings, actor="ops@test", platform_factory=lambda _s: fake)


def portal_settings(port: int, **over: Any) -> PortalSettings:
    """Portal settings that send mail to the test's server."""
    values: dict[str, Any] = {
        "public_url": "http://testserver",
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "mail_from": "portal@participer.example.org",
        **over,
    }
    return PortalSettings(**values)


@pytest.fixture
def client(ctx: Context, smtp: tuple[Inbox, int]) -> TestClient:
    return TestClient(create_app(lambda: ctx, settings=portal_settings(smtp[1])))
