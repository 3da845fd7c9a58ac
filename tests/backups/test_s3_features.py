"""S3 specifics on MinIO: object lock retention, the lifecycle rule, multipart part sizes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from osp_ops.backups import CommandSource, open_store, run_backup, verify_backup
from osp_ops.backups.manifest import backup_prefix
from osp_ops.domain.errors import BackupError
from osp_ops.objects.buckets import (
    LIFECYCLE_RULE_ID,
    ensure_lifecycle,
    lifecycle_rule,
    lifecycle_rules,
)
from osp_ops.objects.s3 import S3Store
from osp_ops.settings import Settings
from tests.factories import SPEC_YAML
from tests.fixtures.backup_data import Keys
from tests.fixtures.minio import MinioServer

pytestmark = pytest.mark.integration


def _store(s3: MinioServer, bucket: str, **kw: object) -> S3Store:
    return S3Store(
        bucket=bucket, prefix="p", endpoint_url=s3.endpoint_url, region=s3.region,
        credentials={"access_key": s3.access_key, "secret_key": s3.secret_key}, **kw,  # type: ignore[arg-type]
    )  # fmt: skip


def test_object_lock_retention_on_every_object(s3: MinioServer, keys: Keys) -> None:
    bucket = s3.create_bucket(object_lock=True)
    store = _store(s3, bucket, object_lock_days=2, object_lock_mode="GOVERNANCE",
                   base_part_size=5 * 1024 * 1024)  # fmt: skip
    m = run_backup(
        source=CommandSource(["sh", "-c", "head -c 12000000 /dev/urandom"]), files=None,
        store=store, tenant="nanterre", spec_yaml=SPEC_YAML, recipients=keys.recipients,
        app_version="0.28.4", row_counts={},
    )  # fmt: skip
    client = s3.client()
    for name in ("db.dump.zst.age", "spec.yaml", "manifest.json"):
        key = f"p/{backup_prefix('nanterre', m.backup_id)}/{name}"
        ret = client.get_object_retention(Bucket=bucket, Key=key)["Retention"]
        assert ret["Mode"] == "GOVERNANCE"
        until = ret["RetainUntilDate"]
        assert timedelta(days=1) < until - datetime.now(UTC) <= timedelta(days=2)
    # A locked version survives a delete: the delete only hides it behind a marker.
    key = f"p/{backup_prefix('nanterre', m.backup_id)}/spec.yaml"
    store.delete(f"{backup_prefix('nanterre', m.backup_id)}/spec.yaml")
    versions = client.list_object_versions(Bucket=bucket, Prefix=key).get("Versions", [])
    assert len(versions) == 1
    assert verify_backup(store, "nanterre", m.backup_id, [keys.tenant_secret]).problems == [
        "spec.yaml: missing"
    ]


def test_lifecycle_rule(s3: MinioServer) -> None:
    bucket = s3.create_bucket(object_lock=False)
    store = _store(s3, bucket)
    assert lifecycle_rules(store) == []
    # MinIO rejects AbortIncompleteMultipartUpload (it expires stale uploads itself):
    # ensure_lifecycle says so and leaves the bucket's rules alone.
    assert ensure_lifecycle(store) is False
    assert lifecycle_rules(store) == []
    assert lifecycle_rule("p") == {
        "ID": LIFECYCLE_RULE_ID, "Status": "Enabled", "Filter": {"Prefix": "p/"},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
    }  # fmt: skip


def test_open_store_from_settings(s3: MinioServer, monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in s3.env.items():
        monkeypatch.setenv(k, v)
    store = open_store(f"s3://{s3.bucket}/pfx", Settings(s3_endpoint_url=s3.endpoint_url))
    assert isinstance(store, S3Store) and store.url == f"s3://{s3.bucket}/pfx"
    store.put_stream("t/x", [b"hello"])
    assert b"".join(store.get_stream("t/x")) == b"hello"
    assert store.get_range("t/x", 1, 3) == b"ell"
    with pytest.raises(BackupError):
        _store(s3, "no-such-bucket-here").put_stream("t/x", [b"x"])


def test_multipart_parts_and_failure_abort(s3: MinioServer, tmp_path: Path) -> None:
    bucket = s3.create_bucket(object_lock=False)
    store = _store(s3, bucket, base_part_size=5 * 1024 * 1024, concurrency=2)
    data = [bytes([i]) * 1_000_000 for i in range(23)]
    size, _ = store.put_stream("t/big", data)
    head = s3.client().head_object(Bucket=bucket, Key="p/t/big")
    assert size == 23_000_000 and head["ContentLength"] == size
    assert head["ETag"].strip('"').endswith("-5")  # 4 parts of 5 MiB + the rest

    def failing():
        yield from data[:12]
        raise BackupError("source died")

    with pytest.raises(BackupError, match="source died"):
        store.put_stream("t/broken", failing())
    assert store.head("t/broken") is None
    assert store.incomplete_uploads("t/") == []
