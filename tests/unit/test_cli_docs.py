"""docs/cli.md is generated from the commands; this fails when it is stale."""

from __future__ import annotations

from pathlib import Path

import pytest

from osp_ops.cli.docgen import cli_markdown
from osp_ops.cli.main import app

pytestmark = pytest.mark.unit

DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def test_cli_reference_is_current() -> None:
    assert DOC.read_text("utf-8") == cli_markdown(app), (
        "docs/cli.md is stale: run `osp-ops docs cli > docs/cli.md`"
    )


def test_every_command_is_documented() -> None:
    text = cli_markdown(app)
    for command in (
        "tenant create",
        "tenant delete",
        "op retry",
        "audit verify",
        "config show",
        "upgrade plan",
        "secrets rotate-key",
        "worker",
    ):
        assert f"## `osp-ops {command}`" in text


def test_boolean_flags_show_their_negative_form() -> None:
    text = cli_markdown(app)
    assert "- `--events`, `--no-events`: Include the event log. (default: `True`)" in text
    assert "`--health`, `--no-health`" in text
