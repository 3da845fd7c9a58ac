"""S3 behind a fault proxy: flaky S3 still gets a backup; a dead S3 fails fast, no manifest."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from osp_ops.backups import CommandSource, DirectorySource, list_backups, run_backup, verify_backup
from osp_ops.domain.errors import OspOpsError, TemporaryError
from osp_ops.objects.s3 import S3Store
from tests.backups.faultproxy import FaultProxy
from tests.factories import SPEC_YAML
from tests.fixtures.backup_data import Keys
from tests.fixtures.minio import MinioServer

pytestmark = pytest.mark.integration

DUMP = ["sh", "-c", "head -c 24000000 /dev/urandom"]


@pytest.fixture
def bucket(s3: MinioServer) -> str:
    return s3.create_bucket(object_lock=False)


def store_via(s3: MinioServer, bucket: str, endpoint: str, **kw: object) -> S3Store:
    return S3Store(
        bucket=bucket, prefix="backups", endpoint_url=endpoint, region=s3.region,
        base_part_size=5 * 1024 * 1024,
        credentials={"access_key": s3.access_key, "secret_key": s3.secret_key}, **kw,  # type: ignore[arg-type]
    )  # fmt: skip


@pytest.fixture
def proxy(s3: MinioServer) -> Iterator[FaultProxy]:
    p = FaultProxy(upstream_port=int(s3.endpoint_url.rsplit(":", 1)[1])).start()
    yield p
    p.stop()


def backup(store: S3Store, keys: Keys, files: Path) -> str:
    return run_backup(
        source=CommandSource(DUMP), files=DirectorySource(files), store=store,
        tenant="nanterre", spec_yaml=SPEC_YAML, recipients=keys.recipients,
        app_version="0.28.4", row_counts={},
    ).backup_id  # fmt: skip


@pytest.mark.parametrize(("rate", "seed"), [(0.05, 1), (0.12, 2), (0.2, 3)])
def test_backup_completes_through_flaky_s3(
    s3: MinioServer, bucket: str, proxy: FaultProxy, keys: Keys, files_dir: Path,
    rate: float, seed: int,
) -> None:  # fmt: skip
    proxy.rate = rate
    proxy._rng.seed(seed)
    flaky = store_via(s3, bucket, proxy.endpoint_url, max_attempts=8, read_timeout=10)
    backup_id = backup(flaky, keys, files_dir)
    # Verify through the faults too (downloads resume after resets), then directly.
    assert verify_backup(flaky, "nanterre", backup_id, [keys.tenant_secret]).ok
    direct = store_via(s3, bucket, s3.endpoint_url)
    assert verify_backup(direct, "nanterre", backup_id, [keys.recovery_secret]).ok
    assert [i.state for i in list_backups(direct, "nanterre")] == ["complete"]
    faults = sum(proxy.counts[f] for f in ("503", "500", "reset", "reset-mid"))
    assert faults >= 2, proxy.counts
    print(f"rate {rate}: {dict(proxy.counts)}")
    assert direct.incomplete_uploads("nanterre/") == []


def test_permanent_outage_fails_in_bounded_time_without_manifest(
    s3: MinioServer, bucket: str, proxy: FaultProxy, keys: Keys, files_dir: Path
) -> None:
    proxy.down = True
    dead = store_via(s3, bucket, proxy.endpoint_url, max_attempts=3, read_timeout=5)
    t0 = time.monotonic()
    with pytest.raises(OspOpsError) as err:
        backup(dead, keys, files_dir)
    assert time.monotonic() - t0 < 90
    assert isinstance(err.value, TemporaryError), err.value
    direct = store_via(s3, bucket, s3.endpoint_url)
    assert not [o for o in direct.list("nanterre/") if o.key.endswith("manifest.json")]
    assert list_backups(direct, "nanterre") == [] or all(
        i.state == "incomplete" for i in list_backups(direct, "nanterre")
    )


def test_connection_refused_is_temporary(s3: MinioServer, bucket: str, keys: Keys, files_dir):
    from tests.fixtures.procs import free_port

    nowhere = store_via(s3, bucket, f"http://127.0.0.1:{free_port()}", max_attempts=2)
    t0 = time.monotonic()
    with pytest.raises(TemporaryError):
        backup(nowhere, keys, files_dir)
    assert time.monotonic() - t0 < 60
