"""Bad input is refused before anything is written: reserved slugs, slugs that are not
DNS labels on every command, spec files with a duplicated key."""

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


def _written(box: Sandbox) -> list[str]:
    """Everything a run left in the world, its own logs aside."""
    return sorted(
        str(p.relative_to(box.root)) for p in box.root.rglob("*") if "runs" not in p.parts
    )


@pytest.mark.parametrize(
    ("slug", "taken"),
    [("ops", "database 'osp_ops'"), ("ops-system", "namespace 'osp-ops-system'")],
)
def test_create_of_a_reserved_slug_is_refused_and_writes_nothing(
    tmp_path: Path, zygote: Zygote, slug: str, taken: str
) -> None:
    box = Sandbox(tmp_path, zygote=zygote)
    r = box.run(
        "tenant", "create", slug, "--app", "decidim", "--platform", "kubernetes",
        "--host", f"{slug}.example.org", "--admin-name", "A", "--admin-email", "a@example.org",
    )  # fmt: skip
    assert r.rc == 2, r
    assert r.stderr.startswith("Error:"), r.stderr
    assert f"slug: '{slug}' is reserved" in r.stderr and taken in r.stderr
    assert _written(box) == []


@pytest.mark.parametrize(
    "argv",
    [
        ("backup", "verify", "../x"),
        ("backup", "list", "../x"),
        ("backup", "run", "../x"),
        ("backup", "restore", "nanterre", "--to", "../x"),
        ("tenant", "show", "../x"),
        ("tenant", "apply", "../x"),
        ("tenant", "delete", "../x", "--yes"),
        ("tenant", "credentials", "../x"),
        ("secrets", "list", "../x"),
        ("secrets", "rotate", "../x"),
        ("upgrade", "run", "../x"),
        ("op", "list", "--tenant", "../x"),
        ("backup", "verify", "ops"),
    ],
)
def test_every_slug_argument_is_checked_before_the_state_db(
    tmp_path: Path, zygote: Zygote, argv: tuple[str, ...]
) -> None:
    box = Sandbox(tmp_path, zygote=zygote)
    r = box.run(*argv)
    assert r.rc == 2, r
    assert r.stderr.startswith("Error: invalid argument"), r.stderr
    assert _written(box) == []


def test_a_duplicated_key_in_a_spec_file_is_refused(tmp_path: Path, zygote: Zygote) -> None:
    box = Sandbox(tmp_path, zygote=zygote)
    (box.root / "tenants").mkdir()
    spec = box.root / "tenants" / "lyon.yaml"
    spec.write_text(
        "slug: lyon\nname: Lyon\napp: {name: openslides, version: '3.3'}\n"
        "hosts: {primary: lyon.example.org}\nadmin: {name: A, email: a@lyon.example.org}\n"
        "plan: small\nplan: large\n"
    )
    r = box.run("tenant", "validate")
    assert r.rc == 2, r
    assert "lyon.yaml: plan: key given twice (line 7, first at line 6)" in r.stderr
    r = box.run("tenant", "apply", "lyon")
    assert r.rc == 2, r
    assert "plan: key given twice" in r.stderr


def test_apply_skips_deleted_tenants_and_only_reuse_deleted_brings_one_back(
    tmp_path: Path, zygote: Zygote
) -> None:
    box = Sandbox(tmp_path, zygote=zygote)
    for slug in ("nanterre", "lyon"):
        assert box.run("tenant", "create", slug, "--app", "openslides").rc == 0
    assert box.run("tenant", "delete", "nanterre", "--yes").rc == 0
    journal = len(box.world()["effects"])

    r = box.run("tenant", "apply", "nanterre")
    assert r.rc == 0, r
    assert "skipped nanterre: tenant 'nanterre' was deleted" in r.stdout
    r = box.run("tenant", "apply", "--all")
    assert r.rc == 0, r
    assert "skipped nanterre" in r.stdout and "apply lyon: succeeded" in r.stdout
    # Nothing touched nanterre on the platform: it was not created again.
    assert "nanterre" not in {e[1] for e in box.world()["effects"][journal:]}
    assert "nanterre" not in box.world()["world"]

    r = box.run("tenant", "create", "nanterre")
    assert r.rc == 4 and "--reuse-deleted" in r.stderr, r
    r = box.run("tenant", "create", "nanterre", "--reuse-deleted", "--yes")
    assert r.rc == 0, r
    assert "create nanterre: succeeded" in r.stdout
    assert "nanterre" in box.world()["world"]


def test_the_state_db_of_the_settings_is_reserved(tmp_path: Path, zygote: Zygote) -> None:
    # A state DB on PostgreSQL named osp_control: the slug control would take it. The
    # server does not even exist: the slug is refused before anything connects.
    box = Sandbox(tmp_path, zygote=zygote)
    url = "postgresql+psycopg://osp:pw@127.0.0.1:1/osp_control"
    r = box.run("tenant", "create", "control", "--app", "openslides", OSP_OPS_STATE_URL=url)
    assert r.rc == 2, r
    assert "slug: 'control' is reserved: it would take database 'osp_control'" in r.stderr
    assert _written(box) == []
