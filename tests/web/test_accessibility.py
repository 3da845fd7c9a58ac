"""axe-core in headless Chromium on every page of the portal, in French and English:
no serious or critical violation.

axe-core comes from the npm registry, pinned (AXE_VERSION), installed once with npm
into ~/.cache/osp-ops/axe-core-<version>; it is injected through the DevTools protocol,
which the pages' CSP (no script at all) does not apply to."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.web.test_browser import PASSWORD, Portal, _admin, browser, portal

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1200)]
__all__ = ["browser", "portal"]  # fixtures, used by name

AXE_VERSION = "4.14.1"
RUN = """
const done = arguments[arguments.length - 1];
axe.run(document, {resultTypes: ["violations"]}).then(
  r => done(r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                    nodes: v.nodes.map(n => n.target.join(" "))}))),
  e => done([{id: "axe-error", impact: "critical", help: String(e), nodes: []}]));
"""


@pytest.fixture(scope="session")
def axe() -> str:
    cache = Path.home() / ".cache" / "osp-ops" / f"axe-core-{AXE_VERSION}"
    script = cache / "node_modules" / "axe-core" / "axe.min.js"
    if not script.exists():
        npm = shutil.which("npm")
        if not npm:
            pytest.fail("npm is needed to fetch axe-core")
        subprocess.run(
            [npm, "install", "--prefix", str(cache), "--no-audit", "--no-fund",
             "--no-save", f"axe-core@{AXE_VERSION}"],
            check=True, capture_output=True, timeout=300,
        )  # fmt: skip
    return script.read_text()


AUDITED: list[str] = []


def _audit(b: Any, axe: str, what: str) -> list[str]:
    b.execute_script(axe)
    b.set_script_timeout(60)
    found = b.execute_async_script(RUN)
    AUDITED.append(f"{what}: {sorted((v['id'], v['impact']) for v in found)}")
    return [
        f"{what}: {v['id']} ({v['impact']}) {v['help']} at {v['nodes'][:3]}"
        for v in found
        if v["impact"] in ("serious", "critical")
    ]


def test_every_page_in_both_languages(portal: Portal, browser: Any, axe: str) -> None:
    from selenium.webdriver.common.by import By

    b, p = browser, portal
    problems: list[str] = []
    space = ""
    for lang in ("fr", "en"):
        b.get(f"{p.base}/?lang={lang}")
        problems += _audit(b, axe, f"form {lang}")
        b.find_element(By.CSS_SELECTOR, "button[type=submit]").click()  # empty: errors
        problems += _audit(b, axe, f"form errors {lang}")
        b.get(f"{p.base}/confirm/forged?lang={lang}")
        problems += _audit(b, axe, f"invalid link {lang}")
        b.get(f"{p.base}/admin/login?lang={lang}")
        problems += _audit(b, axe, f"admin login {lang}")
    # One request through confirmation: the confirm page, the space, the admin pages.
    b.get(f"{p.base}/?lang=fr")
    for name, value in {
        "municipality": "Ville de Nanterre", "insee": "92050", "subdomain": "nanterre",
        "contact_name": "Camille Martin", "contact_role": "DGS",
        "contact_email": "camille@nanterre.example.org", "contact_phone": "01 23 45 67 89",
    }.items():  # fmt: skip
        b.find_element(By.ID, name).send_keys(value)
    b.find_element(By.ID, "consent").click()
    b.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    problems += _audit(b, axe, "sent")
    deadline = time.monotonic() + 20
    while not (
        links := [u for u in p.inbox.links("camille@nanterre.example.org") if "/confirm/" in u]
    ):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    for lang in ("fr", "en"):
        b.get(f"{links[-1]}&lang={lang}")
        problems += _audit(b, axe, f"confirm {lang}")
    b.find_element(By.ID, "confirm").click()
    space = b.current_url
    [req] = p.json("request", "list")
    for lang in ("fr", "en"):
        b.get(f"{space}?lang={lang}")
        problems += _audit(b, axe, f"space {lang}")
    _admin(b, p, req["id"], "approve")
    for lang in ("fr", "en"):
        b.get(f"{p.base}/admin?lang={lang}")
        problems += _audit(b, axe, f"admin list {lang}")
        b.get(f"{p.base}/admin/requests/{req['id']}?lang={lang}")
        problems += _audit(b, axe, f"admin request {lang}")
    assert re.search(r"/space/", space) and PASSWORD
    print("axe-core", AXE_VERSION, "violations by page:", *AUDITED, sep="\n  ")
    assert len(AUDITED) == 17
    assert not problems, "\n".join(problems)
    # axe really looks: an image without text on the last page is a critical violation.
    b.execute_script("document.querySelector('main').appendChild(document.createElement('img'))")
    assert any("image-alt" in x for x in _audit(b, axe, "self-check")), AUDITED[-1]
