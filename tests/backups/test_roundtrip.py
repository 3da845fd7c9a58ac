"""Back up a real database and files, restore into a new database and directory, compare."""

from __future__ import annotations

import filecmp
import json
from pathlib import Path

import pytest

from osp_ops.backups import (
    DirectorySource,
    ObjectStore,
    list_backups,
    manifest_key,
    pg_dump_source,
    restore_backup,
    run_backup,
    verify_backup,
)
from osp_ops.backups.manifest import backup_prefix
from tests.backups import sampledata
from tests.factories import SPEC_YAML
from tests.fixtures.backup_data import Keys, SampleDb
from tests.fixtures.postgres import PostgresServer

pytestmark = pytest.mark.integration


def _same_tree(a: Path, b: Path) -> bool:
    cmp = filecmp.dircmp(a, b)
    if cmp.left_only or cmp.right_only or cmp.diff_files or cmp.funny_files:
        return False
    return all(_same_tree(a / d, b / d) for d in cmp.common_dirs)


def roundtrip(
    store: ObjectStore,
    *,
    sample_db: SampleDb,
    postgres: PostgresServer,
    keys: Keys,
    files_dir: Path,
    tmp_path: Path,
    pg_bin: Path,
    identity: str,
    plain: bool = False,
) -> None:
    mac = manifest_key(keys.tenant_secret)
    manifest = run_backup(
        source=pg_dump_source(sample_db.dsn, bin_dir=pg_bin, plain=plain),
        files=DirectorySource(files_dir),
        store=store,
        tenant="nanterre",
        spec_yaml=SPEC_YAML,
        recipients=keys.recipients,
        app_version="0.28.4",
        row_counts=sample_db.counts,
        mac_key=mac,
    )
    body = manifest.body
    assert body.postgres_version and body.pg_dump_version and "15" in body.pg_dump_version
    assert body.row_counts == sample_db.counts
    assert body.encryption["recipients"] == keys.recipients
    assert [o.name for o in body.objects] == ["db.dump.zst.age", "files.tar.zst.age", "spec.yaml"]
    db = body.object("database")
    assert db is not None and db.size < db.plain_size  # compressed

    [info] = list_backups(store, "nanterre", mac_key=mac)
    assert info.state == "complete" and info.backup_id == manifest.backup_id
    report = verify_backup(store, "nanterre", manifest.backup_id, [identity], mac_key=mac)
    assert report.ok, report.problems
    assert report.decoded and report.objects_checked == 3

    target = postgres.create_database()
    out = tmp_path / "restored-files"
    restore_backup(
        store=store, tenant="nanterre", backup_id=manifest.backup_id, identities=[identity],
        target_dsn=target, target_dir=out, bin_dir=pg_bin, mac_key=mac,
    )  # fmt: skip
    assert sampledata.fingerprint(target) == sample_db.fingerprint
    assert _same_tree(files_dir, out)
    spec = b"".join(store.get_stream(f"{backup_prefix('nanterre', manifest.backup_id)}/spec.yaml"))
    assert spec.decode() == SPEC_YAML
    raw = b"".join(
        store.get_stream(f"{backup_prefix('nanterre', manifest.backup_id)}/manifest.json")
    )
    assert json.loads(raw)["body"]["backup_id"] == manifest.backup_id


def test_roundtrip_local_store(local_store, sample_db, postgres, keys, files_dir, tmp_path, pg_bin):
    roundtrip(local_store, sample_db=sample_db, postgres=postgres, keys=keys,
              files_dir=files_dir, tmp_path=tmp_path, pg_bin=pg_bin,
              identity=keys.tenant_secret)  # fmt: skip


def test_roundtrip_plain_format_with_recovery_key(
    local_store, sample_db, postgres, keys, files_dir, tmp_path, pg_bin
):
    roundtrip(local_store, sample_db=sample_db, postgres=postgres, keys=keys,
              files_dir=files_dir, tmp_path=tmp_path, pg_bin=pg_bin,
              identity=keys.recovery_secret, plain=True)  # fmt: skip


def test_roundtrip_s3(s3_store, sample_db, postgres, keys, files_dir, tmp_path, pg_bin):
    roundtrip(s3_store, sample_db=sample_db, postgres=postgres, keys=keys,
              files_dir=files_dir, tmp_path=tmp_path, pg_bin=pg_bin,
              identity=keys.recovery_secret)  # fmt: skip
    assert s3_store.incomplete_uploads("nanterre/") == []
