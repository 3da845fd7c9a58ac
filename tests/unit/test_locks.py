"""The pinned package sets: every python app version has one, complete and hashed,
made from its current catalog entry; osp-ops' own uv bootstrap matches uv.lock."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from osp_ops.domain.catalog import (
    AppKind,
    bootstrap_lock_text,
    default_catalog,
    lock_source_line,
    lock_text,
)
from osp_ops.domain.errors import CatalogError

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
ENTRY = re.compile(r"^(\S+)==(\S+) \\\n((?:    --hash=sha256:[0-9a-f]{64}(?: \\)?\n)+)", re.M)


def _entries(text: str) -> dict[str, tuple[str, int]]:
    """name -> (version, number of hashes); every non-comment line belongs to one."""
    body = "".join(line + "\n" for line in text.splitlines() if not line.startswith("#"))
    found = {
        m.group(1).lower(): (m.group(2), m.group(3).count("--hash")) for m in ENTRY.finditer(body)
    }
    assert sum(len(m.group(0)) for m in ENTRY.finditer(body)) == len(body), "unparsed lines"
    return found


def _python_versions() -> list[tuple[str, str]]:
    return [
        (name, v.version)
        for name, app in default_catalog().apps.items()
        if app.kind is AppKind.python
        for v in app.versions
    ]


@pytest.mark.parametrize(("app", "version"), _python_versions())
def test_every_python_app_version_has_a_complete_hashed_lock(app: str, version: str) -> None:
    text = lock_text(app, version)
    entry = default_catalog().app(app).version(version)
    assert lock_source_line(entry) in text.splitlines(), "stale: run scripts/lock-apps"
    pins = _entries(text)
    assert pins[app] == (version, pins[app][1])
    assert all(n >= 1 for _, n in pins.values())
    for override in entry.overrides:
        name, _, pinned = override.partition("==")
        assert pins[name.lower()][0] == pinned


def test_bootstrap_pins_pip_setuptools_and_wheel() -> None:
    assert set(_entries(bootstrap_lock_text())) == {"pip", "setuptools", "wheel"}


def test_a_version_without_a_lock_is_a_catalog_error() -> None:
    with pytest.raises(CatalogError, match="lock-apps"):
        lock_text("openslides", "9.9")


def test_lock_apps_check_passes() -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "lock-apps"), "--check"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_uv_bootstrap_is_the_uv_of_uv_lock() -> None:
    lock = tomllib.loads((REPO / "uv.lock").read_text())
    locked = {p["name"]: p["version"] for p in lock["package"]}
    pins = _entries((REPO / "scripts" / "uv-requirements.txt").read_text())
    assert pins["uv"][0] == locked["uv"]
