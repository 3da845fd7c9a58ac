"""Portal tests: a real SMTP server (aiosmtpd) started by the test, a real state DB
(SQLite in the test's directory) and the engine context around it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient

from osp_ops.engine.context import Context, build_context
from osp_ops.platforms.fake import FakePlatform
from osp_ops.settings import Settings
from osp_ops.web.app import create_app
from tests.fixtures.portal import Inbox, free_port, portal_settings


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


@pytest.fixture
def client(ctx: Context, smtp: tuple[Inbox, int]) -> TestClient:
    return TestClient(create_app(lambda: ctx, settings=portal_settings(smtp[1])))
