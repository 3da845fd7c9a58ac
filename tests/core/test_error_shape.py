"""One error shape: an expected error is one ``Error:`` line and at most one ``Hint:``
line; not-found is exit 3 from every command; a slug one letter off a known one gets
"did you mean"; a failed operation's error points to `op show` for its full text."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.core.cli import Result, Sandbox, Zygote

pytestmark = pytest.mark.integration

TYPO = "nantere"  # nanterre with one letter missing

# Every command that takes the slug of an existing tenant, with what else it needs.
SLUG_COMMANDS = [
    ("tenant", "show", TYPO),
    ("tenant", "apply", TYPO),
    ("tenant", "suspend", TYPO),
    ("tenant", "resume", TYPO),
    ("tenant", "delete", TYPO, "--yes"),
    ("tenant", "credentials", TYPO),
    ("tenant", "render", TYPO, "--out", "gitops"),
    ("backup", "run", TYPO),
    ("backup", "list", TYPO),
    ("backup", "verify", TYPO),
    ("backup", "restore", TYPO, "--yes"),
    ("backup", "restore", TYPO, "--confirm-drop", "--yes"),
    ("backup", "repair", TYPO, "20261201T000000Z-000000"),
    ("backup", "list-retired", TYPO),
    ("backup", "prune", TYPO),
    ("backup", "drill", TYPO),
    ("secrets", "list", TYPO),
    ("secrets", "rotate", TYPO),
    ("upgrade", "run", TYPO),
    ("op", "list", "--tenant", TYPO),
    ("audit", "list", "--tenant", TYPO),
]


@pytest.fixture(scope="module")
def zygote() -> Iterator[Zygote]:
    z = Zygote()
    yield z
    z.close()


@pytest.fixture(scope="module")
def world(zygote: Zygote, tmp_path_factory: pytest.TempPathFactory) -> Sandbox:
    box = Sandbox(tmp_path_factory.mktemp("errors"), zygote=zygote)
    r = box.run("tenant", "create", "nanterre", "--app", "openslides")
    assert r.rc == 0, r
    return box


def _shape(r: Result) -> tuple[str, str | None]:
    """The Error line and the Hint line; nothing else on stderr but warnings."""
    lines = r.stderr.splitlines()
    errors = [line for line in lines if line.startswith("Error:")]
    hints = [line for line in lines if line.startswith("Hint:")]
    others = [line for line in lines if line not in errors + hints]
    assert len(errors) == 1 and len(hints) <= 1, r.stderr
    assert all(line.startswith("Warning:") for line in others), r.stderr
    assert lines.index(errors[0]) == len(lines) - 1 - len(hints), r.stderr
    return errors[0], hints[0] if hints else None


@pytest.mark.parametrize("argv", SLUG_COMMANDS, ids=" ".join)
def test_an_unknown_slug_is_not_found_everywhere_with_a_suggestion(
    world: Sandbox, argv: tuple[str, ...]
) -> None:
    r = world.run(*argv)
    assert r.rc == 3, r
    error, hint = _shape(r)
    assert f"'{TYPO}'" in error, error
    assert hint == "Hint: did you mean 'nanterre'?", r.stderr


def test_an_unknown_slug_with_nothing_close_says_how_to_create_it(world: Sandbox) -> None:
    r = world.run("tenant", "suspend", "lyon")
    assert r.rc == 3, r
    error, hint = _shape(r)
    assert "'lyon'" in error and hint is not None and "osp-ops tenant create lyon" in hint


def test_operation_ids_take_a_prefix_and_suggest(world: Sandbox) -> None:
    listed = world.run("op", "list")
    [op_id] = re.findall(r"\b\d{8}T\d{6}-[0-9a-f]{8}\b", listed.stdout)
    r = world.run("op", "show", op_id[:17], "--no-events")
    assert r.rc == 0, r
    assert f"operation {op_id} (matched '{op_id[:17]}')" in r.stderr
    typo = op_id[:-1] + ("0" if op_id[-1] != "0" else "1")
    for argv in (("op", "show", typo), ("op", "retry", typo), ("op", "cancel", typo)):
        r = world.run(*argv)
        assert r.rc == 3, r
        error, hint = _shape(r)
        assert typo in error and hint == f"Hint: did you mean '{op_id}'?", r.stderr


def test_a_failed_operation_is_one_error_line_and_a_hint_to_op_show(world: Sandbox) -> None:
    r = world.run("backup", "drill", "nanterre")  # no backup to drill
    assert r.rc == 3, r
    error, hint = _shape(r)
    assert error == "Error: tenant 'nanterre' has no complete backup", r.stderr
    assert hint is not None and re.fullmatch(
        r"Hint: the full text: osp-ops op show \d{8}T\d{6}-[0-9a-f]{8}", hint
    ), hint


def test_a_spec_no_platform_can_run_is_invalid_at_validate(
    tmp_path_factory: pytest.TempPathFactory, zygote: Zygote
) -> None:
    box = Sandbox(tmp_path_factory.mktemp("platforms"), zygote=zygote)
    r = box.run(
        "tenant", "create", "lyon", "--app", "openslides", "--platform", "kubernetes",
        "--host", "lyon.example.org", "--admin-name", "A", "--admin-email", "a@example.org",
    )  # fmt: skip
    assert r.rc == 2, r
    error, _ = _shape(r)
    assert "platform.kind: OpenSlides is a python app" in error, error
    assert not (box.root / "tenants" / "lyon.yaml").exists()

    (box.root / "tenants").mkdir()
    (box.root / "tenants" / "lyon.yaml").write_text(
        "slug: lyon\nname: Lyon\napp: {name: openslides, version: '3.3'}\n"
        "hosts: {primary: lyon.example.org}\nadmin: {name: A, email: a@lyon.example.org}\n"
        "platform: {kind: kubernetes}\n"
    )
    r = box.run("tenant", "validate")
    assert r.rc == 2, r
    error, _ = _shape(r)
    assert "lyon.yaml: platform.kind: OpenSlides is a python app" in error, error
