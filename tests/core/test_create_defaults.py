"""`tenant create` says which defaults it used, and the spec file it writes shows them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.core.cli import Sandbox, Zygote

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def zygote() -> Iterator[Zygote]:
    z = Zygote()
    yield z
    z.close()


def test_create_from_defaults_names_each_default(tmp_path: Path, zygote: Zygote) -> None:
    box = Sandbox(tmp_path, zygote=zygote)
    r = box.run("tenant", "create", "rueil", "--name", "Ville de Rueil")
    assert r.rc == 0, r
    said = [line for line in r.stdout.splitlines() if line.startswith("using default ")]
    assert said == [
        "using default app openslides 3.3 (choose with --app and --version)",
        "using default host rueil.localhost (choose with --host)",
        "using default admin Administrator <admin@rueil.example.org> "
        "(choose with --admin-name and --admin-email)",
        "using default locale fr (choose with --locale)",
        "using default platform hosts (choose with --platform or default_platform)",
        "using default plan small (choose with --plan)",
    ], r.stdout
    spec = yaml.safe_load((box.root / "tenants" / "rueil.yaml").read_text())
    assert spec["app"] == {"name": "openslides", "version": "3.3"}
    assert spec["hosts"]["primary"] == "rueil.localhost"
    assert spec["admin"] == {"name": "Administrator", "email": "admin@rueil.example.org"}
    assert spec["platform"]["kind"] == "hosts" and spec["plan"] == "small"
    assert spec["locales"]["default"] == "fr"


def test_create_with_every_value_given_uses_no_default(tmp_path: Path, zygote: Zygote) -> None:
    box = Sandbox(tmp_path, zygote=zygote)
    r = box.run(
        "tenant", "create", "lyon", "--name", "Lyon", "--app", "openslides", "--version", "3.3",
        "--host", "lyon.example.org", "--admin-name", "A", "--admin-email", "a@example.org",
        "--locale", "fr", "--platform", "hosts", "--plan", "small",
    )  # fmt: skip
    assert r.rc == 0, r
    assert "using default" not in r.stdout
