"""A municipality requests an instance in a real browser (headless Chromium).

The server and the worker are the real `osp-ops` commands; the platform behind them is
the journaled fake (named as such): creating a real instance is covered by the hosts
platform's end-to-end tests, this test is about the form, the queue and the status page.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.e2e


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    env = {
        **os.environ,
        "OSP_OPS_DATA_DIR": str(tmp_path / "data"),
        "OSP_OPS_TENANTS_DIR": str(tmp_path / "tenants"),
        "OSP_OPS_BASE_DOMAIN": "participer.example.org",
        "OSP_OPS_FAKE_PLATFORM_JOURNAL": str(tmp_path / "fake.json"),
    }
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "osp_ops.cli", "web", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            raise AssertionError("web server did not start")
        yield base, env
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _browser(tmp_path: Path):  # type: ignore[no-untyped-def]
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium = shutil.which("chromium")
    driver_path = shutil.which("chromedriver")
    if not chromium or not driver_path:
        pytest.fail("chromium and chromedriver are needed (scripts/install-deps installs them)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'chromium'}",
    ):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(executable_path=driver_path), options=options)


def test_request_form_in_a_browser(server: tuple[str, dict[str, str]], tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    base, env = server
    browser = _browser(tmp_path)
    try:
        browser.get(base + "/")
        # A first submission with a bad email shows the error next to the field.
        browser.find_element(By.ID, "name").send_keys("Ville de Lyon")
        browser.find_element(By.ID, "slug").send_keys("lyon")
        browser.find_element(By.ID, "contact_name").send_keys("Camille Martin")
        browser.find_element(By.ID, "contact_email").send_keys("camille-at-lyon")
        browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        error = WebDriverWait(browser, 20).until(
            lambda b: b.find_element(By.ID, "contact_email-error")
        )
        assert "email" in error.text
        email = browser.find_element(By.ID, "contact_email")
        email.clear()
        email.send_keys("camille@lyon.example.org")
        browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        WebDriverWait(browser, 20).until(lambda b: "/status/lyon?token=" in b.current_url)
        assert browser.find_element(By.ID, "phase").text == "requested"

        worker = subprocess.run(
            [sys.executable, "-m", "osp_ops.cli", "worker", "--once"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert worker.returncode == 0, worker.stderr
        browser.refresh()
        assert browser.find_element(By.ID, "phase").text == "ready"
        link = browser.find_element(By.ID, "url")
        assert link.get_attribute("href") == "https://lyon.participer.example.org/"
        browser.save_screenshot(str(tmp_path / "status.png"))
    finally:
        browser.quit()
