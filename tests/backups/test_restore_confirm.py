"""An in-place restore and `--confirm-drop` ask first (naming the backup and its age, or
what is dropped); `--yes` skips the question; without an answer nothing happens."""

from __future__ import annotations

import re
import secrets
from pathlib import Path

import pytest

from osp_ops.store.operations import OperationInfo
from tests.backups.test_damaged import _backup, _cli
from tests.backups.test_operations import _context, _create, _settings, _spec
from tests.fixtures.postgres import PostgresServer

pytestmark = pytest.mark.integration


def test_in_place_restore_and_drop_ask_first(tmp_path: Path, postgres: PostgresServer) -> None:
    slug = f"c{secrets.token_hex(3)}"
    settings = _settings(tmp_path, postgres)
    ctx = _context(settings)
    spec = _spec(slug)
    _create(ctx, postgres, spec)
    backup_id = _backup(ctx, spec)

    def restores() -> list[OperationInfo]:
        return [o for o in ctx.operations.recent(limit=50) if o.kind == "restore"]

    for answer in ("", "n\n"):  # no terminal (cron, a script), or "no"
        asked = _cli(settings, "backup", "restore", slug, stdin=answer)
        assert asked.returncode == 1, (asked.stdout, asked.stderr)
        assert re.search(
            rf"Restore {spec.name} \({slug}\) in place from backup {backup_id}, taken "
            r"\d{4}-\d\d-\d\d \d\d:\d\d UTC \(\d+ min ago\)\?",
            asked.stdout,
        ), asked.stdout
        assert restores() == []
    done = _cli(settings, "backup", "restore", slug, "--yes")
    assert done.returncode == 0, done.stderr
    assert [o.status for o in restores()] == ["succeeded"]
    retired = _cli(settings, "backup", "list-retired", slug).stdout.split()
    assert len(retired) == 1

    asked = _cli(settings, "backup", "restore", slug, "--confirm-drop")
    assert asked.returncode == 1
    assert f"Drop {retired[0]} of {slug} for good" in asked.stdout
    assert _cli(settings, "backup", "list-retired", slug).stdout.split() == retired
    dropped = _cli(settings, "backup", "restore", slug, "--confirm-drop", stdin="y\n")
    assert dropped.returncode == 0, dropped.stderr
    assert _cli(settings, "backup", "list-retired", slug).stdout.split() == []
