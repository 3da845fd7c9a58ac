"""Quiet by default: steps and their outcomes; platform tasks with -v; the advice to
trust the local CA once, after the create, not again on every resume."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.core.cli import Sandbox, Zygote

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def zygote() -> Iterator[Zygote]:
    z = Zygote()
    yield z
    z.close()


def test_tasks_only_with_v_and_ca_advice_only_on_create(tmp_path: Path, zygote: Zygote) -> None:
    box = Sandbox(tmp_path, zygote=zygote)
    ca = box.data_dir / "ca" / "ca.crt"
    ca.parent.mkdir(parents=True)
    ca.write_text("-----BEGIN CERTIFICATE-----\n")

    r = box.run("tenant", "create", "nanterre", "--app", "openslides")
    assert r.rc == 0, r
    assert "✓ provision" in r.stdout and "fake provision" not in r.stdout
    assert r.stdout.count(f"curl --cacert {ca}") == 1

    r = box.run("tenant", "suspend", "nanterre", "-v")
    assert r.rc == 0, r
    assert "changed  [fake] fake suspend" in r.stdout
    r = box.run("tenant", "resume", "nanterre")
    assert r.rc == 0, r
    assert "fake resume" not in r.stdout
    assert "URL: https://nanterre.localhost/" in r.stdout and "cacert" not in r.stdout
    r = box.run("-v", "tenant", "suspend", "nanterre")  # the global -v does the same
    assert r.rc == 0, r
    assert "[fake] fake suspend" in r.stdout


def test_upgrade_run_shows_platform_tasks_with_v(tmp_path: Path, zygote: Zygote) -> None:
    box = Sandbox(tmp_path, zygote=zygote)
    r = box.run("tenant", "create", "lyon", "--app", "openslides", "--version", "3.2")
    assert r.rc == 0, r
    spec = tmp_path / "tenants" / "lyon.yaml"
    spec.write_text(spec.read_text().replace("version: '3.2'", "version: '3.3'"))
    assert "version: '3.3'" in spec.read_text()
    r = box.run("upgrade", "run", "lyon", "-v")
    assert r.rc == 0, r
    assert "[fake] fake deploy" in r.stdout, r.stdout
