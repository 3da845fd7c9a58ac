"""kill -9 at every boundary of a backup: never a complete-looking bad backup, and the
next run cleans up and produces a verified backup."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from osp_ops.backups import LocalStore, cleanup, list_backups, verify_backup
from osp_ops.objects.s3 import S3Store
from tests.fixtures.backup_data import Keys
from tests.fixtures.minio import MinioServer

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
# 24 MB that zstd cannot shrink: five 5 MiB parts on S3.
DUMP = ["sh", "-c", "head -c 24000000 /dev/urandom"]


def run(args: dict[str, object], failpoint: str | None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ}
    env.pop("OSP_OPS_FAILPOINT", None)
    if failpoint:
        env["OSP_OPS_FAILPOINT"] = failpoint
    return subprocess.run(
        [sys.executable, "-m", "tests.backups.crashrunner", json.dumps(args)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def s3_config(s3: MinioServer, bucket: str) -> dict[str, object]:
    return {"s3": {"bucket": bucket, "prefix": "backups", "endpoint_url": s3.endpoint_url,
                   "region": s3.region, "access_key": s3.access_key,
                   "secret_key": s3.secret_key}}  # fmt: skip


def crash_then_recover(store, cfg, keys: Keys, files: Path, failpoint: str) -> None:  # type: ignore[no-untyped-def]
    args = {"store": cfg, "argv": DUMP, "files": str(files), "recipients": keys.recipients}
    res = run(args, failpoint)
    assert res.returncode == -signal.SIGKILL, (failpoint, res.returncode, res.stderr)
    infos = list_backups(store, "nanterre")
    assert all(i.state != "complete" for i in infos), failpoint
    if failpoint == "backup:after-objects":
        assert [i.state for i in infos] == ["incomplete"]
    elif isinstance(store, S3Store):  # the crash left a multipart upload behind
        assert len(store.incomplete_uploads("nanterre/")) == 1

    res = run(args, None)
    assert res.returncode == 0, res.stderr
    good = res.stdout.strip()
    if isinstance(store, S3Store):
        assert store.incomplete_uploads("nanterre/") == []
    cleanup(store, "nanterre", completed=())
    infos = list_backups(store, "nanterre")
    assert [(i.backup_id, i.state) for i in infos] == [(good, "complete")]
    assert verify_backup(store, "nanterre", good, [keys.tenant_secret]).ok


@pytest.mark.parametrize(
    "failpoint",
    ["backup:after-multipart-create", "backup:mid-part", "backup:before-complete",
     "backup:after-objects"],
)  # fmt: skip
def test_kill_during_s3_backup(s3: MinioServer, keys: Keys, files_dir: Path, failpoint: str):
    bucket = s3.create_bucket(object_lock=False)
    store = S3Store(
        bucket=bucket, prefix="backups", endpoint_url=s3.endpoint_url, region=s3.region,
        credentials={"access_key": s3.access_key, "secret_key": s3.secret_key},
    )  # fmt: skip
    crash_then_recover(store, s3_config(s3, bucket), keys, files_dir, failpoint)


@pytest.mark.parametrize("failpoint", ["backup:mid-part", "backup:after-objects"])
def test_kill_during_local_backup(tmp_path: Path, keys: Keys, files_dir: Path, failpoint: str):
    store = LocalStore(tmp_path / "store")
    crash_then_recover(store, {"local": str(store.root)}, keys, files_dir, failpoint)
    leftovers = [p for p in store.root.rglob("*") if ".osp-tmp-" in p.name]
    assert leftovers == []
