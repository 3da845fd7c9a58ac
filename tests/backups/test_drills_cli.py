"""Drill history: `backup drills SLUG` (and --json) shows date, backup, result, RTO and
what was checked; `tenant show` shows the last one; `backup drill --backup` drills the
backup a prefix names.

Real PostgreSQL for the tenant's data, a fake app platform, the local store.
"""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path

import pytest

from tests.backups.test_cli_ids import _cli, _ok
from tests.backups.test_damaged import _backup
from tests.backups.test_operations import TABLES, _context, _create, _settings, _spec
from tests.fixtures.postgres import PostgresServer

pytestmark = pytest.mark.integration


def test_drill_history_is_listed_and_the_last_drill_shown(
    tmp_path: Path, postgres: PostgresServer
) -> None:
    slug = f"h{secrets.token_hex(3)}"
    settings = _settings(tmp_path, postgres)
    ctx = _context(settings)
    _create(ctx, postgres, _spec(slug))
    first = _backup(ctx, _spec(slug))
    time.sleep(1.1)  # backup ids sort by the second they were taken in
    latest = _backup(ctx, _spec(slug))

    assert _ok(_cli(settings, "backup", "drills", slug)).strip().endswith("0 drills")
    proc = _cli(settings, "backup", "drill", slug, "--backup", first[:-2])
    assert f"drill ok: backup {first}" in _ok(proc)
    assert f"backup {first} (matched '{first[:-2]}')" in proc.stderr
    _ok(_cli(settings, "backup", "drill", slug))  # the latest complete one

    drills = json.loads(_ok(_cli(settings, "backup", "drills", slug, "--json")))["drills"]
    assert [d["backup"] for d in drills] == [latest, first]  # newest first
    for d in drills:
        assert d["result"] == "ok" and d["problem"] is None
        assert d["rto_seconds"] is not None and d["rto_seconds"] >= 0
        assert sorted(d["checked"]["row_counts"]) == sorted(TABLES)
        assert d["checked"]["restored_row_counts"] == d["checked"]["row_counts"]
        assert d["date"].endswith("+00:00")

    text = _ok(_cli(settings, "backup", "drills", slug))
    assert "DATE (UTC)" in text and "2 drills" in text
    assert first in text and latest in text and "row counts of 3" in text

    shown = _ok(_cli(settings, "tenant", "show", slug, "--no-health"))
    [line] = [line for line in shown.splitlines() if line.startswith("last drill")]
    assert "ok " in line and f"backup {latest}, RTO " in line and " UTC" in line
    data = json.loads(_ok(_cli(settings, "tenant", "show", slug, "--no-health", "--json")))
    assert data["last_drill"]["backup"] == latest

    proc = _cli(settings, "backup", "drills", slug[:-1])  # one letter off
    assert proc.returncode == 3 and f"did you mean {slug!r}" in proc.stderr, proc.stderr
