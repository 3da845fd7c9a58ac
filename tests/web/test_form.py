"""The request form: validation per field, CSRF, status page guarded by a token."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from osp_ops.engine.context import Context
from osp_ops.engine.worker import run_worker
from osp_ops.web.app import create_app
from tests.factories import fake_context

pytestmark = pytest.mark.unit


@pytest.fixture
def ctx(tmp_path: Path) -> Context:
    return fake_context(tmp_path, base_domain="participer.example.org")


@pytest.fixture
def client(ctx: Context) -> TestClient:
    return TestClient(create_app(lambda: ctx))


def _csrf(client: TestClient) -> str:
    page = client.get("/")
    assert page.status_code == 200
    match = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert match
    return match.group(1)


GOOD = {
    "name": "Ville de Nanterre",
    "slug": "nanterre",
    "app": "openslides",
    "contact_name": "Camille Martin",
    "contact_email": "camille@nanterre.example.org",
    "locale": "fr",
    "host": "",
}


def test_valid_request_queues_creation_and_status_follows_it(
    client: TestClient, ctx: Context
) -> None:
    response = client.post("/request", data={**GOOD, "csrf": _csrf(client)}, follow_redirects=False)
    assert response.status_code == 303
    status_url = response.headers["location"]
    assert status_url.startswith("/status/nanterre?token=")
    assert ctx.specs.load("nanterre").hosts.primary == "nanterre.participer.example.org"
    page = client.get(status_url)
    assert "requested" in page.text and "begin-provisioning" in page.text
    assert run_worker(ctx, once=True) == 1
    data = client.get(status_url.replace("/status/", "/api/status/")).json()
    assert data["phase"] == "ready"
    assert data["url"] == "https://nanterre.participer.example.org/"
    assert ctx.operations.recent(tenant="nanterre")[0].requested_by == (
        "web:camille@nanterre.example.org"
    )


def test_every_bad_field_is_reported_and_nothing_is_created(
    client: TestClient, ctx: Context
) -> None:
    bad = {**GOOD, "slug": "Nan Terre", "contact_email": "not-an-email", "name": ""}
    response = client.post("/request", data={**bad, "csrf": _csrf(client)})
    assert response.status_code == 422
    assert 'id="slug-error"' in response.text
    assert 'id="contact_email-error"' in response.text
    assert 'id="name-error"' in response.text
    assert ctx.tenants.list() == []
    assert not list(ctx.settings.tenants_dir.glob("*.yaml"))


def test_missing_csrf_is_refused(client: TestClient, ctx: Context) -> None:
    client.cookies.clear()
    response = client.post("/request", data={**GOOD, "csrf": "forged"})
    assert response.status_code == 400
    assert ctx.tenants.list() == []


def test_taken_slug_and_colliding_host_are_refused(client: TestClient) -> None:
    client.post("/request", data={**GOOD, "csrf": _csrf(client)}, follow_redirects=False)
    again = client.post("/request", data={**GOOD, "csrf": _csrf(client)})
    assert again.status_code == 409
    other = {**GOOD, "slug": "nanterre2", "host": "nanterre.participer.example.org"}
    clash = client.post("/request", data={**other, "csrf": _csrf(client)})
    assert clash.status_code == 422
    assert "also used by" in clash.text


def test_status_needs_the_token(client: TestClient) -> None:
    client.post("/request", data={**GOOD, "csrf": _csrf(client)}, follow_redirects=False)
    assert client.get("/status/nanterre?token=wrong").status_code == 404
    assert client.get("/status/nanterre").status_code == 404
    assert client.get("/api/status/unknown?token=x").status_code == 404
