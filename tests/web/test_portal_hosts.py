"""The portal against a real instance: a request in French in headless Chromium,
confirmed from the mail (real SMTP server), approved in the admin page, and a real
OpenSlides 3.3 created by `osp-ops worker` on the hosts platform (this machine,
connection local); the client space reaches "ready", Chromium opens the instance URL
and its admin logs in (OpenSlides' REST login, with the password `tenant credentials`
gives the ops team)."""

from __future__ import annotations

import os
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.portal import Inbox
from tests.fixtures.procs import free_port
from tests.hosts.helpers import local_inventory, new_host_base, stop_supervisord
from tests.web.test_browser import (
    PASSWORD,
    Portal,
    _admin,
    _open_mail_link,
    _request,
    browser,
    serve,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]
__all__ = ["browser"]  # the fixture, used by name


@pytest.fixture
def hosts_portal(smtp: tuple[Inbox, int], tmp_path: Path) -> Iterator[tuple[Portal, int]]:
    inbox, smtp_port = smtp
    base_dir = new_host_base("osp-p-")
    (base_dir / "tenants").mkdir()
    http, https, pg_port = free_port(), free_port(), free_port()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "OSP_OPS_DATA_DIR": str(base_dir / "data"),
        "OSP_OPS_TENANTS_DIR": str(base_dir / "tenants"),
        "OSP_OPS_INVENTORY": str(
            local_inventory(base_dir, http=http, https=https, pg_port=pg_port)
        ),
        "OSP_OPS_HOST_ROOT": str(base_dir / "root"),
        "OSP_OPS_HTTP_PORT": str(http),
        "OSP_OPS_HTTPS_PORT": str(https),
        "OSP_OPS_BASE_DOMAIN": "localhost",
        "OSP_OPS_PORTAL_PUBLIC_URL": base,
        "OSP_OPS_PORTAL_SMTP_PORT": str(smtp_port),
        "OSP_OPS_ACTOR": "ops@test",
        "COLUMNS": "250",
    }
    env.pop("OSP_OPS_FAKE_PLATFORM_JOURNAL", None)
    env.pop("OSP_OPS_PLATFORM", None)
    try:
        with serve(env, port):
            p = Portal(base, env, inbox, tmp_path)
            p.cli("request", "admin-add", "alice", "--password-stdin", stdin=PASSWORD + "\n")
            yield p, https
    finally:
        stop_supervisord(base_dir / "root")
        if not os.environ.get("OSP_OPS_KEEP_SERVICE_DIRS"):
            subprocess.run(["rm", "-rf", str(base_dir)], check=False)


def test_request_to_a_real_openslides(hosts_portal: tuple[Portal, int], browser: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    p, https = hosts_portal
    b = browser
    b.get(p.base + "/")
    email = "camille@nanterre.example.org"
    _request(b, p, email, "nanterre", "Ville de Nanterre", "92050", "hosts")
    _open_mail_link(b, p, email)
    space = b.current_url
    [req] = p.json("request", "list")
    _admin(b, p, req["id"], "approve")
    p.cli("worker", "--once", timeout=1500)
    b.get(space)
    assert b.find_element(By.ID, "state").get_attribute("data-state") == "ready"
    url = b.find_element(By.ID, "url").get_attribute("href")
    assert url == "https://nanterre.localhost/"

    # The instance answers at its URL (on the test's HTTPS port), and its admin logs in.
    b.get(f"https://nanterre.localhost:{https}/")
    WebDriverWait(b, 60).until(lambda d: "OpenSlides" in d.page_source)
    password = p.json("tenant", "credentials", "nanterre")["password"]
    ca = Path(p.env["OSP_OPS_DATA_DIR"]) / "ca" / "ca.crt"
    origin = f"https://nanterre.localhost:{https}"
    with httpx.Client(verify=ssl.create_default_context(cafile=str(ca)), timeout=60) as c:
        r = c.post(
            f"https://127.0.0.1:{https}/apps/users/login/",
            json={"username": "admin", "password": password},
            headers={"Host": f"nanterre.localhost:{https}", "Referer": origin + "/"},
            extensions={"sni_hostname": "nanterre.localhost"},
        )
        assert r.status_code == 200, r.text[:300]
    subjects = [m["Subject"] for m in p.inbox.to(email)]
    assert len(subjects) == 4 and "prête" in subjects[-1], subjects
