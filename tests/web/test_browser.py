"""The portal in a real browser (headless Chromium), against the real `osp-ops web serve`
and `osp-ops worker` processes and a real SMTP server started by the test.

The platform behind them is the journaled fake (named as such): this test is about the
portal, the emailed link, the approval queue and the client space. Creating a real
instance is covered by the hosts platform's end-to-end tests; the portal flow against a
real OpenSlides on the hosts platform is not automated yet (docs/portal.md says so).

With OSP_OPS_PORTAL_SCREENSHOTS=1 the screenshots are written to docs/portal/ (the
pictures of docs/portal.md); otherwise to the test's directory.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.portal import Inbox, free_port

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery staple"
# Seconds a page, a mail or the server may take: generous, for a loaded machine (a
# passing run never waits that long).
WAIT = 90


@dataclass
class Portal:
    base: str
    env: dict[str, str]
    inbox: Inbox
    shots: Path

    def cli(
        self, *args: str, stdin: str | None = None, timeout: float = 180
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "osp_ops.cli", *args],
            env=self.env, input=stdin, capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        return done

    def json(self, *args: str) -> Any:
        return json.loads(self.cli(*args, "--json").stdout)


@contextlib.contextmanager
def serve(env: dict[str, str], port: int) -> Iterator[None]:
    """`osp-ops web serve` on ``port`` until the block ends."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "osp_ops.cli", "web", "serve", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + WAIT
        while not _healthy(port):
            assert proc.poll() is None, f"web serve exited with {proc.returncode}"
            assert time.monotonic() < deadline, "web server did not start"
            time.sleep(0.2)
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10).status_code == 200
    except httpx.TransportError:
        return False


def _wait(b: Any, until: Any) -> None:
    """Wait for ``until(driver)``; an element missing, or replaced by the next page, is
    looked up again."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(b, WAIT, ignored_exceptions=(StaleElementReferenceException,)).until(until)


def _click_to(b: Any, element: Any, until: Any) -> None:
    """Click ``element`` (a link or a submit button) and wait for the next page."""
    element.click()
    _wait(b, until)


@pytest.fixture
def portal(tmp_path: Path, smtp: tuple[Inbox, int]) -> Iterator[Portal]:
    inbox, smtp_port = smtp
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "OSP_OPS_DATA_DIR": str(tmp_path / "data"),
        "OSP_OPS_TENANTS_DIR": str(tmp_path / "tenants"),
        "OSP_OPS_BASE_DOMAIN": "participer.example.org",
        "OSP_OPS_FAKE_PLATFORM_JOURNAL": str(tmp_path / "fake.json"),
        "OSP_OPS_PLATFORM": "osp_ops.platforms.fake:journal_platform",
        "OSP_OPS_PORTAL_PUBLIC_URL": base,
        "OSP_OPS_PORTAL_SMTP_PORT": str(smtp_port),
        "OSP_OPS_ACTOR": "ops@test",
    }
    shots = REPO / "docs" / "portal" if os.environ.get("OSP_OPS_PORTAL_SCREENSHOTS") else tmp_path
    shots.mkdir(exist_ok=True)
    with serve(env, port):
        p = Portal(base, env, inbox, shots)
        p.cli("request", "admin-add", "alice", "--password-stdin", stdin=PASSWORD + "\n")
        yield p


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium = shutil.which("chromium")
    driver_path = shutil.which("chromedriver")
    if not chromium or not driver_path:
        pytest.fail("chromium and chromedriver are needed (scripts/install-deps installs them)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--window-size=1000,1400", "--ignore-certificate-errors", "--lang=fr-FR", f"--user-data-dir={tmp_path / 'chromium'}",
    ):  # fmt: skip
        options.add_argument(flag)
    options.add_experimental_option("prefs", {"intl.accept_languages": "fr-FR,fr"})
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _fill(b: Any, values: dict[str, str]) -> None:
    from selenium.webdriver.common.by import By

    for name, value in values.items():
        element = b.find_element(By.ID, name)
        element.clear()
        element.send_keys(value)


def _request(b: Any, p: Portal, email: str, sub: str, name: str, insee: str, shot: str) -> None:
    from selenium.webdriver.common.by import By

    # A first try with a bad email and no consent: the summary and the field say so.
    _fill(b, {"municipality": name, "insee": insee, "subdomain": sub,
              "contact_name": "Camille Martin", "contact_role": "DGS",
              "contact_email": "camille-at-example", "contact_phone": "01 23 45 67 89"})  # fmt: skip
    submit = b.find_element(By.CSS_SELECTOR, "button[type=submit]")
    _click_to(b, submit, lambda d: d.find_elements(By.ID, "contact_email-error"))
    assert b.find_element(By.ID, "error-summary").is_displayed()
    assert b.find_element(By.ID, "consent-error")
    b.save_screenshot(str(p.shots / f"{shot}-errors.png"))
    _fill(b, {"contact_email": email})
    b.find_element(By.ID, "consent").click()
    submit = b.find_element(By.CSS_SELECTOR, "button[type=submit]")
    _click_to(b, submit, lambda d: "/sent" in d.current_url)


def _open_mail_link(b: Any, p: Portal, email: str) -> None:
    from selenium.webdriver.common.by import By

    deadline = time.monotonic() + WAIT
    while not (links := [u for u in p.inbox.links(email) if "/confirm/" in u]):
        assert time.monotonic() < deadline, "no confirmation mail"
        time.sleep(0.2)
    assert p.json("op", "list") == []  # nothing queued before the click
    assert p.json("request", "list")[0]["state"] == "unconfirmed"
    b.get(links[-1])
    _click_to(b, b.find_element(By.ID, "confirm"), lambda d: "/space/" in d.current_url)


def _admin(b: Any, p: Portal, request_id: str, verb: str, reason: str = "") -> None:
    from selenium.webdriver.common.by import By

    b.get(p.base + "/admin/login")
    _fill(b, {"username": "alice", "password": PASSWORD})
    submit = b.find_element(By.CSS_SELECTOR, "button[type=submit]")
    _click_to(b, submit, lambda d: d.current_url.endswith("/admin"))
    _click_to(b, b.find_element(By.LINK_TEXT, request_id), lambda d: d.find_elements(By.ID, verb))
    if reason:
        _fill(b, {"reason": reason})
    decided = lambda d: d.find_element(By.ID, "state").text != "pending"  # noqa: E731
    _click_to(b, b.find_element(By.ID, verb), decided)


def test_request_in_french_confirm_approve_ready(portal: Portal, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    b, p = browser, portal
    b.get(p.base + "/")
    assert b.find_element(By.TAG_NAME, "html").get_attribute("lang") == "fr"
    b.save_screenshot(str(p.shots / "form-fr.png"))
    _request(
        b, p, "camille@nanterre.example.org", "nanterre", "Ville de Nanterre", "92050", "form-fr"
    )
    _open_mail_link(b, p, "camille@nanterre.example.org")
    space = b.current_url
    assert b.find_element(By.ID, "state").get_attribute("data-state") == "pending"
    assert p.json("op", "list") == []  # confirmed, still nothing queued
    [req] = p.json("request", "list")

    _admin(b, p, req["id"], "approve")
    [op] = p.json("op", "list")
    assert op["kind"] == "create" and op["requested_by"] == "portal-admin:alice"
    p.cli("worker", "--once")
    b.get(space)
    assert b.find_element(By.ID, "state").get_attribute("data-state") == "ready"
    assert b.find_element(By.ID, "url").get_attribute("href") == (
        "https://nanterre.participer.example.org/"
    )
    b.save_screenshot(str(p.shots / "space-ready-fr.png"))
    subjects = [m["Subject"] for m in p.inbox.to("camille@nanterre.example.org")]
    assert len(subjects) == 4 and "prête" in subjects[-1], subjects


def test_request_in_english_then_rejected(portal: Portal, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    b, p = browser, portal
    b.get(p.base + "/")
    _click_to(
        b,
        b.find_element(By.LINK_TEXT, "English"),
        lambda d: d.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en",
    )
    assert b.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en"
    b.save_screenshot(str(p.shots / "form-en.png"))
    _request(b, p, "mayor@lyon.example.org", "lyon", "City of Lyon", "69123", "form-en")
    _open_mail_link(b, p, "mayor@lyon.example.org")
    space = b.current_url
    [req] = p.json("request", "list")
    _admin(b, p, req["id"], "reject", reason="A platform already serves this city.")
    b.save_screenshot(str(p.shots / "admin-rejected.png"))
    b.get(space)
    assert b.find_element(By.ID, "state").get_attribute("data-state") == "rejected"
    assert "already serves" in b.find_element(By.ID, "reason").text
    last = p.inbox.to("mayor@lyon.example.org")[-1]
    assert "rejected" in last["Subject"] and "already serves" in Inbox.body(last)
    assert p.json("op", "list") == []
