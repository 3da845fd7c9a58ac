"""Restore BY HAND, without osp-ops, exactly as docs/backups.md says (age, zstd, pg_restore, tar)."""

from __future__ import annotations

import filecmp
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from osp_ops.backups import DirectorySource, LocalStore, libpq_env, pg_dump_source, run_backup
from osp_ops.backups.manifest import backup_prefix
from tests.backups import sampledata
from tests.factories import SPEC_YAML
from tests.fixtures.backup_data import Keys, SampleDb
from tests.fixtures.postgres import PostgresServer

pytestmark = pytest.mark.integration

DOC = Path(__file__).resolve().parents[2] / "docs" / "backups.md"


def doc_script() -> str:
    """The shell block of docs/backups.md marked ``restore-by-hand``."""
    text = DOC.read_text("utf-8")
    m = re.search(r"<!-- restore-by-hand -->\s*```sh\n(.*?)```", text, re.S)
    assert m, "docs/backups.md lost its restore-by-hand block"
    return m.group(1)


@pytest.mark.skipif(not (shutil.which("age") and shutil.which("zstd")), reason="")
def test_restore_by_hand_as_documented(
    tmp_path: Path, sample_db: SampleDb, postgres: PostgresServer, keys: Keys,
    files_dir: Path, pg_bin: Path,
) -> None:  # fmt: skip
    store = LocalStore(tmp_path / "store")
    manifest = run_backup(
        source=pg_dump_source(sample_db.dsn, bin_dir=pg_bin), files=DirectorySource(files_dir),
        store=store, tenant="nanterre", spec_yaml=SPEC_YAML, recipients=keys.recipients,
        app_version="0.28.4", row_counts=sample_db.counts,
    )  # fmt: skip
    # "Fetch the backup directory": for the local store, a copy.
    backup = tmp_path / "fetched"
    shutil.copytree(store.root / backup_prefix("nanterre", manifest.backup_id), backup)
    key = tmp_path / "recovery.key"
    key.write_text(f"# ops recovery key\n{keys.recovery_secret}\n")
    key.chmod(0o600)
    target = postgres.create_database()
    env = {
        **os.environ,
        **libpq_env(target),
        "PATH": f"{pg_bin}:{os.environ['PATH']}",
        "BACKUP": str(backup),
        "KEY": str(key),
        "FILES": str(tmp_path / "files"),
    }
    res = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", doc_script()], env=env, capture_output=True, text=True
    )
    assert res.returncode == 0, res.stderr
    assert "db.dump.zst.age: OK" in res.stdout
    assert sampledata.fingerprint(target) == sample_db.fingerprint
    cmp = filecmp.dircmp(files_dir / "decidim", tmp_path / "files" / "decidim")
    assert cmp.common_dirs == ["attachments", "avatars"] and not cmp.left_only
    assert (tmp_path / "files" / "decidim" / "avatars" / "صورة.bin").read_bytes() == (
        files_dir / "decidim" / "avatars" / "صورة.bin"
    ).read_bytes()
