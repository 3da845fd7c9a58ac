"""The portal end to end in-process: the form, the emailed link (real SMTP server), the
approval that alone queues the creation, the client space; and every refusal: CSRF,
rate limits, honeypot, expired, reused and forged links."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from osp_ops.engine.context import Context
from osp_ops.engine.worker import run_worker
from osp_ops.store.db import utcnow
from osp_ops.store.requests import AdminStore, RequestState, RequestStore
from osp_ops.store.tables import PortalRequestRow
from osp_ops.web.app import create_app
from osp_ops.web.auth import hash_password
from tests.fixtures.portal import Inbox, portal_settings

pytestmark = pytest.mark.integration

EMAIL = "camille@nanterre.example.org"
GOOD = {
    "municipality": "Ville de Nanterre",
    "insee": "92050",
    "address_kind": "subdomain",
    "subdomain": "nanterre",
    "domain": "",
    "contact_name": "Camille Martin",
    "contact_role": "Directrice générale des services",
    "contact_email": EMAIL,
    "contact_phone": "01 23 45 67 89",
    "app": "openslides",
    "plan": "small",
    "locales": ["fr", "en"],
    "consent": "yes",
    "consent_version": "2026-01",
}
PASSWORD = "correct horse battery staple"


def csrf(client: TestClient, path: str = "/") -> str:
    page = client.get(path)
    assert page.status_code == 200, page.text
    match = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert match
    return match.group(1)


def submit(client: TestClient, **over: object) -> object:
    data = {**GOOD, **over}
    return client.post("/request", data={**data, "csrf": csrf(client)}, follow_redirects=False)


def nothing_queued(ctx: Context) -> bool:
    return ctx.operations.recent() == [] and not list(ctx.settings.tenants_dir.glob("*.yaml"))


def confirm_link(inbox: Inbox, address: str = EMAIL) -> str:
    links = [u for u in inbox.links(address) if "/confirm/" in u]
    assert links, [Inbox.body(m) for m in inbox.to(address)]
    parts = urlsplit(links[-1])
    return f"{parts.path}?{parts.query}"


def click(client: TestClient, link: str) -> object:
    """Open the emailed link and press its button, as a person does."""
    page = client.get(link)
    if page.status_code != 200:
        return page
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    space = re.search(r'name="space" value="([^"]*)"', page.text)
    assert token and space
    return client.post(
        link.split("?")[0],
        data={"csrf": token.group(1), "space": space.group(1)},
        follow_redirects=False,
    )


def sign_in(client: TestClient, ctx: Context, user: str = "alice") -> None:
    AdminStore(ctx.db).put(user, hash_password(PASSWORD))
    token = csrf(client, "/admin/login")
    r = client.post(
        "/admin/login",
        data={"csrf": token, "username": user, "password": PASSWORD},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text


def test_only_the_approval_queues_the_creation(
    client: TestClient, ctx: Context, smtp: tuple[Inbox, int]
) -> None:
    inbox, _ = smtp
    r = submit(client)
    assert r.status_code == 303 and r.headers["location"].startswith("/sent")  # type: ignore[attr-defined]
    assert nothing_queued(ctx)
    (mail,) = inbox.to(EMAIL)
    assert "Nanterre" in mail["Subject"] and "Confirmez" in mail["Subject"]  # French form
    [req] = RequestStore(ctx.db).recent()
    assert req.state is RequestState.unconfirmed

    link = confirm_link(inbox)
    page = client.get(link)
    assert page.status_code == 200 and 'id="confirm"' in page.text
    assert RequestStore(ctx.db).require(req.id).state is RequestState.unconfirmed  # GET: nothing
    done = click(client, link)
    assert done.status_code == 303  # type: ignore[attr-defined]
    space = done.headers["location"]  # type: ignore[attr-defined]
    assert space.startswith("/space/")
    assert nothing_queued(ctx)  # confirmed, but not approved yet
    assert RequestStore(ctx.db).require(req.id).state is RequestState.pending
    assert 'data-state="pending"' in client.get(space).text

    sign_in(client, ctx)
    listing = client.get("/admin")
    assert req.id in listing.text
    token = csrf(client, f"/admin/requests/{req.id}")
    r = client.post(
        f"/admin/requests/{req.id}/approve", data={"csrf": token}, follow_redirects=False
    )
    assert r.status_code == 303, r.text
    assert ctx.specs.load("nanterre").hosts.primary == "nanterre.participer.example.org"
    [op] = ctx.operations.recent()
    assert op.kind == "create" and op.requested_by == "portal-admin:alice"
    approvals = [e for e in ctx.audit.entries() if e.action == "portal.approved"]
    assert [e.actor for e in approvals] == ["portal-admin:alice"]

    assert run_worker(ctx, once=True) == 1
    page = client.get(space)
    assert 'data-state="ready"' in page.text
    assert 'href="https://nanterre.participer.example.org/"' in page.text
    assert 'id="maintenance"' in page.text
    states = [m["Subject"] for m in inbox.to(EMAIL)]
    assert len(states) == 4, states  # confirm, pending, approved, ready
    again = client.get(space)  # a second look sends no second mail
    assert 'data-state="ready"' in again.text and len(inbox.to(EMAIL)) == 4


def test_rejection_emails_the_reason_and_deletes_personal_data(
    client: TestClient, ctx: Context, smtp: tuple[Inbox, int]
) -> None:
    inbox, _ = smtp
    submit(client, locales=["en"])
    click(client, confirm_link(inbox))
    [req] = RequestStore(ctx.db).recent()
    sign_in(client, ctx)
    token = csrf(client, f"/admin/requests/{req.id}")
    empty = client.post(f"/admin/requests/{req.id}/reject", data={"csrf": token, "reason": " "})
    assert empty.status_code == 422 and 'id="reason-error"' in empty.text
    r = client.post(
        f"/admin/requests/{req.id}/reject",
        data={"csrf": token, "reason": "Une demande existe déjà pour cette commune."},
        follow_redirects=False,
    )
    assert r.status_code == 303
    last = inbox.to(EMAIL)[-1]
    assert "Une demande existe déjà" in Inbox.body(last)
    gone = RequestStore(ctx.db).require(req.id)
    assert gone.state is RequestState.rejected and gone.email is None
    assert "contact_name" not in gone.data
    assert "Une demande existe déjà" in client.get(f"/admin/requests/{req.id}").text
    assert nothing_queued(ctx)


def test_missing_or_wrong_csrf_is_403(client: TestClient, ctx: Context) -> None:
    assert client.post("/request", data=GOOD).status_code == 403
    csrf(client)
    assert client.post("/request", data={**GOOD, "csrf": "forged"}).status_code == 403
    assert client.post("/confirm/x", data={"csrf": ""}).status_code == 403
    assert client.post("/admin/login", data={"username": "a", "password": "b"}).status_code == 403
    assert client.post("/admin/requests/x/approve", data={}).status_code == 403
    assert client.post("/admin/logout", data={}).status_code == 403
    assert RequestStore(ctx.db).recent() == []


def test_rate_limits_answer_429_with_retry_after(ctx: Context, smtp: tuple[Inbox, int]) -> None:
    settings = portal_settings(smtp[1], requests_per_ip_per_hour=2, requests_per_email_per_hour=1)
    client = TestClient(create_app(lambda: ctx, settings=settings))
    assert submit(client).status_code == 303  # type: ignore[attr-defined]
    same_email = submit(client, subdomain="nanterre2")
    assert same_email.status_code == 429  # type: ignore[attr-defined]
    assert int(same_email.headers["retry-after"]) > 3000  # type: ignore[attr-defined]
    other = submit(client, subdomain="nanterre3", contact_email="dgs@nanterre.example.org")
    assert other.status_code == 303  # type: ignore[attr-defined]
    by_ip = submit(client, subdomain="nanterre4", contact_email="x@nanterre.example.org")
    assert by_ip.status_code == 429  # type: ignore[attr-defined]
    assert len(RequestStore(ctx.db).recent()) == 2


def test_login_is_rate_limited(ctx: Context, smtp: tuple[Inbox, int]) -> None:
    client = TestClient(create_app(lambda: ctx, settings=portal_settings(smtp[1])))
    AdminStore(ctx.db).put("alice", hash_password(PASSWORD))
    token = csrf(client, "/admin/login")
    codes = [
        client.post(
            "/admin/login", data={"csrf": token, "username": "alice", "password": "wrong password"}
        ).status_code
        for _ in range(6)
    ]
    assert codes == [401] * 5 + [429]
    assert client.get("/admin", follow_redirects=False).status_code == 303  # not signed in


def test_expired_reused_and_forged_links_are_refused(
    client: TestClient, ctx: Context, smtp: tuple[Inbox, int]
) -> None:
    inbox, _ = smtp
    submit(client)
    link = confirm_link(inbox)
    token = link.split("/confirm/")[1].split("?")[0]
    forged = link.replace(token, token[:-2] + ("AA" if token[-2:] != "AA" else "BB"))
    assert client.get(forged).status_code == 404
    assert click(client, link).status_code == 303  # type: ignore[attr-defined]
    assert client.get(link).status_code == 404  # reused
    assert click(client, link).status_code == 404  # type: ignore[attr-defined]
    t = csrf(client)
    assert client.post(link.split("?")[0], data={"csrf": t}).status_code == 404
    assert client.get("/space/" + "x" * 43).status_code == 404

    submit(client, subdomain="lyon", insee="69123", municipality="Ville de Lyon",
           contact_email="maire@lyon.example.org")  # fmt: skip
    expired = confirm_link(inbox, "maire@lyon.example.org")
    with ctx.db.transaction() as s:
        s.execute(
            update(PortalRequestRow)
            .where(PortalRequestRow.slug == "lyon")
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    assert client.get(expired).status_code == 404
    assert click(client, expired).status_code == 404  # type: ignore[attr-defined]
    assert len(RequestStore(ctx.db).expire()) == 1
    [lyon] = [r for r in RequestStore(ctx.db).recent() if r.slug == "lyon"]
    assert lyon.state is RequestState.expired and lyon.email is None
    assert nothing_queued(ctx)


def test_honeypot_records_nothing(
    client: TestClient, ctx: Context, smtp: tuple[Inbox, int]
) -> None:
    r = submit(client, website="http://spam.example")
    assert r.status_code == 303  # type: ignore[attr-defined]
    assert RequestStore(ctx.db).recent() == [] and smtp[0].messages == []


def test_every_bad_field_is_reported_next_to_it(client: TestClient, ctx: Context) -> None:
    bad = {**GOOD, "insee": "9205", "subdomain": "Nan Terre", "contact_email": "not-an-email",
           "contact_phone": "abc", "municipality": "", "locales": [], "consent": ""}  # fmt: skip
    r = client.post("/request", data={**bad, "csrf": csrf(client)})
    assert r.status_code == 422
    assert 'id="error-summary"' in r.text
    for name in ("insee", "subdomain", "contact_email", "contact_phone", "municipality",
                 "locales", "consent"):  # fmt: skip
        assert f'id="{name}-error"' in r.text, name
    wrong_name = client.post("/request", data={**GOOD, "municipality": "Ville de Lyon",
                                               "csrf": csrf(client)})  # fmt: skip
    assert wrong_name.status_code == 422 and "Nanterre" in wrong_name.text
    assert RequestStore(ctx.db).recent() == []


def test_taken_address_and_own_domain(
    client: TestClient, ctx: Context, smtp: tuple[Inbox, int]
) -> None:
    inbox, _ = smtp
    assert submit(client).status_code == 303  # type: ignore[attr-defined]
    taken = submit(client, contact_email="other@nanterre.example.org")
    assert taken.status_code == 422 and 'id="subdomain-error"' in taken.text  # type: ignore[attr-defined]
    own = submit(client, address_kind="domain", domain="participer.lyon.example.fr",
                 municipality="Ville de Lyon", insee="69123",
                 contact_email="dgs@lyon.example.org")  # fmt: skip
    assert own.status_code == 303  # type: ignore[attr-defined]
    r = click(client, confirm_link(inbox, "dgs@lyon.example.org"))
    page = client.get(r.headers["location"])  # type: ignore[attr-defined]
    assert "participer.lyon.example.fr. CNAME participer.example.org." in page.text


def test_languages_headers_and_switcher(client: TestClient) -> None:
    fr = client.get("/")
    assert '<html lang="fr">' in fr.text and "Votre commune" in fr.text
    en = client.get("/", headers={"Accept-Language": "en-GB,en;q=0.9,fr;q=0.5"})
    assert '<html lang="en">' in en.text and "Your municipality" in en.text
    switched = client.get("/?lang=en")
    assert "Your municipality" in switched.text and switched.cookies.get("osp_lang") == "en"
    assert "Your municipality" in client.get("/").text  # the cookie remembers
    h = fr.headers
    assert "script-src" not in h["content-security-policy"]
    assert "default-src 'none'" in h["content-security-policy"]
    assert h["x-frame-options"] == "DENY" and h["referrer-policy"] == "no-referrer"
    assert "<script" not in fr.text and " style=" not in fr.text


def test_json_api_and_openapi(client: TestClient, ctx: Context, smtp: tuple[Inbox, int]) -> None:
    inbox, _ = smtp
    doc = client.get("/api/v1/openapi.json").json()
    assert {"/api/v1/requests", "/api/v1/confirm", "/api/v1/space/{token}"} <= set(doc["paths"])
    body = {**GOOD, "consent": True, "lang": "en"}
    bad = client.post("/api/v1/requests", json={**body, "insee": "x"})
    assert bad.status_code == 422 and "insee" in bad.json()["errors"]
    r = client.post("/api/v1/requests", json=body)
    assert r.status_code == 202 and r.json()["state"] == "unconfirmed"
    assert nothing_queued(ctx)
    token = confirm_link(inbox).split("/confirm/")[1].split("?")[0]
    assert client.post("/api/v1/confirm", json={"token": token}).json()["state"] == "pending"
    assert client.post("/api/v1/confirm", json={"token": token}).status_code == 404
    AdminStore(ctx.db).put("bob", hash_password(PASSWORD))
    assert client.get("/api/v1/admin/requests").status_code == 401
    session = client.post("/api/v1/admin/session", json={"username": "bob", "password": PASSWORD})
    auth = {"Authorization": f"Bearer {session.json()['token']}"}
    [req] = client.get("/api/v1/admin/requests", headers=auth).json()
    done = client.post(f"/api/v1/admin/requests/{req['id']}/approve", headers=auth)
    assert done.status_code == 200 and done.json()["state"] == "approved"
    assert [o.kind for o in ctx.operations.recent()] == ["create"]
    again = client.post(f"/api/v1/admin/requests/{req['id']}/approve", headers=auth)
    assert again.status_code == 409


def test_mail_server_down(ctx: Context, smtp: tuple[Inbox, int]) -> None:
    from tests.fixtures.portal import free_port

    down = TestClient(create_app(lambda: ctx, settings=portal_settings(free_port())))
    r = submit(down)
    assert r.status_code == 503 and "courriel de confirmation" in r.text  # type: ignore[attr-defined]
    [req] = RequestStore(ctx.db).recent()
    assert req.state is RequestState.expired and req.email is None  # holds nothing
    up = TestClient(create_app(lambda: ctx, settings=portal_settings(smtp[1])))
    assert submit(up).status_code == 303  # type: ignore[attr-defined]
    link = confirm_link(smtp[0])
    page = down.get(link)
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token
    # The state mail cannot go out: the confirmation stands all the same.
    r = down.post(link.split("?")[0], data={"csrf": token.group(1)}, follow_redirects=False)
    assert r.status_code == 200
    assert RequestStore(ctx.db).recent()[0].state is RequestState.pending
