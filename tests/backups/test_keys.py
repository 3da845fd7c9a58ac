"""Encryption: readable with the tenant key or the recovery key, and with nothing else."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from osp_ops.backups import (
    CommandSource,
    DirectorySource,
    LocalStore,
    new_identity,
    restore_backup,
    run_backup,
    verify_backup,
)
from osp_ops.backups.manifest import backup_prefix
from osp_ops.domain.errors import BackupError
from tests.factories import SPEC_YAML
from tests.fixtures.backup_data import Keys

pytestmark = pytest.mark.integration

MARKER = "proposition-secrète-de-la-mairie-7f3a"


def _backup(store: LocalStore, keys: Keys, files: Path, recipients: list[str]) -> str:
    src = CommandSource(["sh", "-c", f"for i in $(seq 1 2000); do echo {MARKER} $i; done"])
    return run_backup(
        source=src, files=DirectorySource(files), store=store, tenant="nanterre",
        spec_yaml=SPEC_YAML, recipients=recipients, app_version="0.28.4", row_counts={},
    ).backup_id  # fmt: skip


def test_tenant_or_recovery_key_reads_nothing_else_does(
    tmp_path: Path, local_store: LocalStore, keys: Keys, files_dir: Path
) -> None:
    backup_id = _backup(local_store, keys, files_dir, keys.recipients)
    stored = local_store.root / backup_prefix("nanterre", backup_id) / "db.dump.zst.age"
    assert MARKER.encode() not in stored.read_bytes()
    assert stored.read_bytes().startswith(b"age-encryption.org/v1\n")

    for ident in (keys.tenant_secret, keys.recovery_secret):
        assert verify_backup(local_store, "nanterre", backup_id, [ident]).ok
    stranger = new_identity()[0]
    report = verify_backup(local_store, "nanterre", backup_id, [stranger])
    assert not report.ok and any("decrypt" in p for p in report.problems)
    with pytest.raises(BackupError):
        restore_backup(store=local_store, tenant="nanterre", backup_id=backup_id,
                       identities=[stranger], target_dir=tmp_path / "x")  # fmt: skip
    with pytest.raises(BackupError, match="no age identity"):
        restore_backup(store=local_store, tenant="nanterre", backup_id=backup_id,
                       identities=[], target_dir=tmp_path / "y")  # fmt: skip
    # Without a key, verify can still check the stored bytes, but decodes nothing.
    blind = verify_backup(local_store, "nanterre", backup_id, [])
    assert blind.ok and not blind.decoded
    # The age CLI agrees.
    keyfile = tmp_path / "stranger.key"
    keyfile.write_text(stranger + "\n")
    res = subprocess.run(["age", "-d", "-i", str(keyfile), str(stored)], capture_output=True)
    assert res.returncode != 0
    restore_backup(store=local_store, tenant="nanterre", backup_id=backup_id,
                   identities=[keys.recovery_secret], target_dir=tmp_path / "ok")  # fmt: skip
    assert (tmp_path / "ok" / "decidim" / "avatars" / "صورة.bin").exists()


def test_recovery_key_alone_is_not_enough_if_not_a_recipient(
    local_store: LocalStore, keys: Keys, files_dir: Path
) -> None:
    backup_id = _backup(local_store, keys, files_dir, [keys.tenant_public])
    assert verify_backup(local_store, "nanterre", backup_id, [keys.tenant_secret]).ok
    assert not verify_backup(local_store, "nanterre", backup_id, [keys.recovery_secret]).ok
