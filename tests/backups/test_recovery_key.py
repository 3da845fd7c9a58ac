"""No recovery key is a warning, not a silence; `backup recovery-key` makes one, and
the next backup is readable with its secret half alone."""

from __future__ import annotations

import secrets
import stat
from pathlib import Path

import pytest

from osp_ops.backups import list_backups, verify_backup
from osp_ops.engine import backup_access
from tests.backups.test_damaged import _cli
from tests.backups.test_operations import _context, _create, _settings, _spec
from tests.fixtures.postgres import PostgresServer

pytestmark = pytest.mark.integration

WARNING = "Warning: no recovery key (recovery_public_key)"


def test_no_recovery_key_warns_and_recovery_key_makes_one(
    tmp_path: Path, postgres: PostgresServer
) -> None:
    slug = f"k{secrets.token_hex(3)}"
    settings = _settings(tmp_path, postgres)
    ctx = _context(settings)
    spec = _spec(slug)
    _create(ctx, postgres, spec)

    shown = _cli(settings, "config", "show")
    assert shown.returncode == 0 and WARNING in shown.stderr, shown.stderr
    run = _cli(settings, "backup", "run", slug)
    assert run.returncode == 0 and WARNING in run.stderr, run.stderr
    asked = _cli(settings, "tenant", "delete", slug)  # no answer: nothing is deleted
    assert (
        asked.returncode == 1
        and "the backups and the key. Warning: no recovery key" in " ".join(asked.stdout.split())
    )
    [first] = list_backups(backup_access.store_for(ctx), slug)
    assert first.manifest is not None
    assert len(first.manifest.body.encryption["recipients"]) == 1  # type: ignore[index]

    made = _cli(settings, "backup", "recovery-key")
    assert made.returncode == 0, made.stderr
    secret_file = settings.data_dir / "recovery.key"
    assert f"Move {secret_file} offline now" in made.stdout
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    public = (settings.data_dir / "recovery.pub").read_text().strip()
    again = _cli(settings, "backup", "recovery-key")
    assert again.stdout.strip() == f"recovery public key: {public}"

    assert WARNING not in _cli(settings, "config", "show").stderr
    run = _cli(settings, "backup", "run", slug)
    assert run.returncode == 0 and WARNING not in run.stderr, run.stderr
    newest = list_backups(backup_access.store_for(ctx), slug)[-1]
    assert newest.manifest is not None
    assert public in newest.manifest.body.encryption["recipients"]  # type: ignore[index]
    recovery_secret = [
        line for line in secret_file.read_text().splitlines() if not line.startswith("#")
    ]
    report = verify_backup(backup_access.store_for(ctx), slug, newest.backup_id, recovery_secret)
    assert report.ok and report.decoded, report.problems
