"""Ids can be copied from the tables at 80 columns (a pipe, cron mail, a default terminal)
and used: every id `op list`, `backup list` and `tenant list` print is whole, on one line,
and a unique prefix works where an id is taken.

Real PostgreSQL for the tenants' data, a fake app platform, the local store; the CLI as
an operator runs it, with COLUMNS=80 and stdout a pipe.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from osp_ops.settings import Settings
from tests.backups.test_damaged import _backup
from tests.backups.test_operations import _context, _create, _settings, _spec
from tests.fixtures.postgres import PostgresServer

pytestmark = pytest.mark.integration

OP_ID = re.compile(r"\b\d{8}T\d{6}-[0-9a-f]{8}\b")
BACKUP_ID = re.compile(r"\b\d{8}T\d{6}Z-[0-9a-f]{6}\b")


def _cli(settings: Settings, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OSP_OPS_")}
    assert settings.platform_db_admin_dsn is not None
    env |= {
        "OSP_OPS_DATA_DIR": str(settings.data_dir),
        "OSP_OPS_TENANTS_DIR": str(settings.tenants_dir),
        "OSP_OPS_PLATFORM_DB_ADMIN_DSN": settings.platform_db_admin_dsn.get_secret_value(),
        "OSP_OPS_RETRY_BASE_DELAY": "0",
        "OSP_OPS_FAKE_PLATFORM_JOURNAL": str(settings.data_dir.parent / "fake.json"),
        "OSP_OPS_PLATFORM": "osp_ops.platforms.fake:journal_platform",
        "COLUMNS": "80",
    }
    return subprocess.run(
        [sys.executable, "-m", "osp_ops.cli", *argv],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def _ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, (proc.args, proc.stdout, proc.stderr)
    return proc.stdout


def _printed(text: str, pattern: re.Pattern[str]) -> set[str]:
    assert all(len(line) <= 80 for line in text.splitlines()), text
    return set(pattern.findall(text))


def test_every_listed_id_is_whole_at_80_columns_and_works(
    tmp_path: Path, postgres: PostgresServer
) -> None:
    short = f"i{secrets.token_hex(3)}"
    long = f"nanterre-la-defense-{secrets.token_hex(3)}"
    settings = _settings(tmp_path, postgres)
    ctx = _context(settings)
    for slug in (short, long):
        _create(ctx, postgres, _spec(slug))
    backups = {_backup(ctx, _spec(long)) for _ in range(2)}

    # op list: every operation id whole, each one opens with `op show`.
    ops = {o["id"] for o in json.loads(_ok(_cli(settings, "op", "list", "--json")))}
    text = _ok(_cli(settings, "op", "list"))
    assert _printed(text, OP_ID) == ops, text
    assert f"{len(ops)} operations" in text
    for op_id in ops:
        assert op_id in _ok(_cli(settings, "op", "show", op_id, "--no-events"))

    # backup list: every backup id whole, each one verifies by id and by a unique prefix.
    text = _ok(_cli(settings, "backup", "list", long))
    assert _printed(text, BACKUP_ID) == backups, text
    assert "2 backups" in text and " KiB" in text and "UTC" in text
    for backup_id in backups:
        assert f"{backup_id}: ok" in _ok(
            _cli(settings, "backup", "verify", long, "--backup", backup_id)
        )
    first, second = sorted(backups)
    shared = next(n for n, (x, y) in enumerate(zip(first, second, strict=True)) if x != y)
    common, unique = first[:shared], first[: shared + 1]
    proc = _cli(settings, "backup", "verify", long, "--backup", unique)
    assert f"{first}: ok" in _ok(proc)
    assert f"backup {first} (matched {unique!r})" in proc.stderr

    # An ambiguous prefix lists the candidates (invalid input); an unknown id suggests.
    proc = _cli(settings, "backup", "verify", long, "--backup", common)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    [error] = [line for line in proc.stderr.splitlines() if line.startswith("Error:")]
    assert "is ambiguous" in error and first in error and second in error
    typo = first[:-1] + ("0" if first[-1] != "0" else "1")
    for command in ("restore", "verify", "drill"):  # the same bad id: the same exit code
        yes = ("--yes",) if command == "restore" else ()
        proc = _cli(settings, "backup", command, long, "--backup", typo, *yes)
        assert proc.returncode == 3, (command, proc.stdout, proc.stderr)
        assert f"Hint: did you mean {first!r}" in proc.stderr

    # tenant list: every slug whole, each one opens with `tenant show`.
    text = _ok(_cli(settings, "tenant", "list"))
    slugs = {t["slug"] for t in json.loads(_ok(_cli(settings, "tenant", "list", "--json")))}
    assert slugs == {short, long}
    lines = text.splitlines()
    for slug in slugs:
        assert any(line.split()[:1] == [slug] for line in lines), text
        assert slug in _ok(_cli(settings, "tenant", "show", slug, "--no-health"))
