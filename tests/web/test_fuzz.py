"""Fuzzing every field of the request form, the JSON API and the link paths: never a
5xx, and nothing posted is reflected unescaped.

OSP_OPS_TEST_FUZZ sets the number of cases of each test (500 by default; 10000 for the
long run)."""

from __future__ import annotations

import os
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from osp_ops.engine.context import Context
from osp_ops.web.app import create_app
from osp_ops.web.forms import FIELDS
from tests.fixtures.portal import Inbox, portal_settings
from tests.web.test_portal import GOOD

CASES = int(os.environ.get("OSP_OPS_TEST_FUZZ", "500"))
# 10,000 cases of the link test take more than the default 900 s on a loaded machine.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(max(900, CASES // 3))]
FUZZ = settings(
    max_examples=CASES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# Markers that must never come back as they were sent: a tag, an attribute break-out.
MARKERS = ('<b id="fz">', "'><i fz>", '" fz="1', "</textarea><u fz>")
NASTY = st.sampled_from(
    ["", " ", "%", "%(x)s", "%s", "{{ 7*7 }}", "{% raw %}", "\x00", "\r\n", "é", "🏛",
     "92050", "2A004", "nanterre", "a" * 300, "x@y.example.org", "\u202e", "..", "-"]
)  # fmt: skip
TEXT = (
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40) | NASTY
)


@st.composite
def field_value(draw: st.DrawFn) -> str:
    """Random text, sometimes around a marker."""
    value = draw(TEXT)
    if draw(st.booleans()):
        value = draw(TEXT) + draw(st.sampled_from(MARKERS)) + value
    return value


@pytest.fixture
def fuzz_client(ctx: Context, smtp: tuple[Inbox, int]) -> TestClient:
    big = {
        "requests_per_ip_per_hour": 10**6,
        "requests_per_email_per_hour": 10**6,
        "posts_per_ip_per_hour": 10**6,
    }
    client = TestClient(create_app(lambda: ctx, settings=portal_settings(smtp[1], **big)))
    client.get("/")  # the CSRF cookie
    return client


def _no_reflection(text: str) -> None:
    for marker in MARKERS:
        assert marker not in text, f"{marker!r} reflected unescaped"


@FUZZ
@given(
    data=st.fixed_dictionaries(
        {},
        optional={name: field_value() for name in FIELDS if name != "locales"}
        | {"locales": st.lists(field_value(), max_size=4)},
    ),
    keep=st.sets(st.sampled_from([f for f in FIELDS if f != "locales"])),
    lang=st.sampled_from(["fr", "en", "xx", "<b>"]),
)
def test_form_fields(
    fuzz_client: TestClient, data: dict[str, object], keep: set[str], lang: str
) -> None:
    form = {**{k: v for k, v in GOOD.items() if k in keep}, **data}
    csrf = fuzz_client.cookies.get("osp_csrf")
    r = fuzz_client.post(
        f"/request?lang={lang}", data={**form, "csrf": csrf or ""}, follow_redirects=False
    )
    assert r.status_code < 500, r.text
    assert r.status_code in (303, 422, 429), r.status_code
    _no_reflection(r.text)
    if r.status_code == 422:
        assert 'id="error-summary"' in r.text


@FUZZ
@given(
    body=st.dictionaries(
        st.sampled_from([*FIELDS, "lang", "extra"]),
        field_value() | st.integers() | st.none() | st.booleans() | st.lists(field_value()),
        max_size=8,
    )
)
def test_json_api(fuzz_client: TestClient, body: dict[str, object]) -> None:
    r = fuzz_client.post("/api/v1/requests", json=body)
    assert r.status_code < 500, r.text
    # JSON may echo what was sent (FastAPI's 422 does); never as HTML.
    assert r.headers["content-type"].startswith("application/json")
    assert r.headers["x-content-type-options"] == "nosniff"


@FUZZ
@given(token=st.text(max_size=80), space=field_value())
def test_links(fuzz_client: TestClient, token: str, space: str) -> None:
    path = quote(token, safe="") or "x"
    for url in (f"/confirm/{path}", f"/space/{path}", f"/api/v1/space/{path}"):
        r = fuzz_client.get(url, params={"space": space})
        assert r.status_code in (404, 200), (url, r.status_code)
        _no_reflection(r.text)
    csrf = fuzz_client.cookies.get("osp_csrf") or ""
    r = fuzz_client.post(f"/confirm/{path}", data={"csrf": csrf, "space": space})
    assert r.status_code == 404
