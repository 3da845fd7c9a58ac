"""Kubernetes tenants' uploads in a bucket per tenant (``app_storage: s3``), on real MinIO.

The tenant's database is on real PostgreSQL, its bucket on real MinIO; the app part is
``FakePlatform``, which keeps the tenant's bucket as the Kubernetes platform does
(``TenantBuckets``), so the uploads Decidim's Active Storage would write are put into the
bucket by the test (random keys at the root, ``variants/...``, content types).
"""

from __future__ import annotations

import io
import secrets
import subprocess
import tarfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from osp_ops.backups import bucket_archive, list_backups, open_store
from osp_ops.backups.pipeline import decode_object
from osp_ops.domain.errors import BackupError, ConfigError
from osp_ops.domain.storage import tenant_bucket
from osp_ops.engine import app_storage, backup_access
from osp_ops.engine.api import request
from osp_ops.engine.context import Context, build_context
from osp_ops.engine.kinds import restore as restores
from osp_ops.engine.runner import run_operation
from osp_ops.objects.buckets import delete_bucket
from osp_ops.objects.s3 import S3Store
from osp_ops.platforms.fake import FakePlatform
from osp_ops.platforms.kubernetes.buckets import TenantBuckets
from osp_ops.settings import Settings
from tests.backups.test_operations import _create, _run, _spec
from tests.fixtures.minio import MinioServer
from tests.fixtures.postgres import PostgresServer

pytestmark = pytest.mark.integration


def _settings(tmp_path: Path, postgres: PostgresServer, s3: MinioServer, prefix: str) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        tenants_dir=tmp_path / "tenants",
        retry_base_delay=0,
        platform_db_admin_dsn=SecretStr(postgres.dsn),
        app_storage="s3",
        app_s3_endpoint_url=s3.endpoint_url,
        app_s3_access_key_id=s3.access_key,
        app_s3_secret_access_key=SecretStr(s3.secret_key),
        app_s3_bucket_prefix=prefix,
    )


def _context(settings: Settings) -> Context:
    # The app part is the fake, keeping the bucket; the database and bucket are real.
    fake_app_platform = FakePlatform(buckets=TenantBuckets(settings))
    return build_context(settings, actor="test", platform_factory=lambda _s: fake_app_platform)


def _uploads() -> dict[str, tuple[bytes, str]]:
    """What Active Storage would have written: key -> (content, content type)."""
    token = lambda: secrets.token_hex(14)  # noqa: E731
    photo = token()
    return {
        photo: (secrets.token_bytes(3 * 1024 * 1024 + 17), "image/jpeg"),
        f"variants/{photo}/{token()}": (secrets.token_bytes(40_000), "image/webp"),
        token(): ("Compte rendu — conseil de quartier\n".encode() * 300, "application/pdf"),
        token(): (b"", "text/plain"),
    }


def _put(store: S3Store, objects: dict[str, tuple[bytes, str]]) -> None:
    for key, (data, content_type) in objects.items():
        store.put_stream(key, [data], content_type=content_type)


def _live(store: S3Store, prefix: str = "") -> dict[str, tuple[bytes, str | None]]:
    out = {}
    for obj in store.list(prefix):
        if not prefix and obj.key.startswith(".osp-ops/"):
            continue
        _size, content_type, chunks = store.get_object_stream(obj.key)
        out[obj.key[len(prefix) :]] = (b"".join(chunks), content_type)
    return out


def test_bucket_per_tenant_backup_restore_drill_delete(
    tmp_path: Path, postgres: PostgresServer, s3: MinioServer
) -> None:
    slug = f"k{secrets.token_hex(3)}"
    settings = _settings(tmp_path, postgres, s3, prefix=f"t{secrets.token_hex(3)}-")
    ctx = _context(settings)
    spec = _spec(slug)
    _create(ctx, postgres, spec, rows=5)
    store = app_storage.tenant_store(settings, spec)
    assert store.bucket == f"{settings.app_s3_bucket_prefix}{slug}"
    assert store.list("") == []  # created empty by the provision step

    original = _uploads()
    _put(store, original)
    out = _run(ctx, "backup", spec)
    assert out.startswith("verified ")
    info = list_backups(open_store(settings.effective_backup_url, settings), slug)[-1]
    assert info.manifest is not None
    files = [o for o in info.manifest.body.objects if o.role == "files"]
    assert len(files) == 1 and files[0].format == "tar"

    # The files object is a tar GNU tar reads: one member per key.
    backup_store = open_store(settings.effective_backup_url, settings)
    secret, _public = backup_access.tenant_keys(ctx, slug)
    with decode_object(
        store=backup_store,
        key=f"{info.prefix}/{files[0].name}",
        encrypted=True,
        identities=[secret],
    ) as (plain, _result):
        tar_bytes = plain.read()
    listing = subprocess.run(
        ["tar", "-tf", "-"], input=tar_bytes, capture_output=True, check=True
    ).stdout.decode()
    assert sorted(listing.split()) == sorted(original)

    # The app changes its files after the backup: one deleted, one replaced, one added.
    changed = dict(original)
    gone, replaced = sorted(original)[:2]
    store.delete(gone)
    del changed[gone]
    changed[replaced] = (b"replaced", "text/plain")
    changed["added-after-backup"] = (b"new", "text/plain")
    _put(store, {k: changed[k] for k in (replaced, "added-after-backup")})

    drill = _run(ctx, "drill", spec)
    assert drill.startswith("drill ok"), drill
    assert bucket_archive.names(store) == []  # the drill's staged copy is gone

    params = restores.restore_params(ctx, spec, info.backup_id, datetime.now(UTC))
    op, _ = request(ctx, "restore", spec, params=params)
    done = run_operation(ctx, op.id)
    assert done.status == "succeeded", done.error
    outputs = {s.name: s.output or "" for s in done.steps}
    assert outputs["restore-files"] == f"files restored into {params['files_new']}"
    assert params["files_retired"] in outputs["switch-files"]

    assert _live(store) == {k: (v, t) for k, (v, t) in original.items()}
    retired = params["files_retired"]
    assert _live(store, f".osp-ops/{retired}/") == {k: (v, t) for k, (v, t) in changed.items()}
    assert retired in restores.retired_databases(ctx, spec)  # listed with the retired data
    assert retired in restores.drop_retired(ctx, spec)
    assert bucket_archive.names(store) == []

    # Deleting the tenant deletes its bucket; its backups stay.
    op, _ = request(ctx, "delete", spec)
    done = run_operation(ctx, op.id)
    assert done.status == "succeeded", done.error
    assert not any(b["Name"] == store.bucket for b in s3.client().list_buckets()["Buckets"])
    assert list_backups(open_store(settings.effective_backup_url, settings), slug)


class _CrashError(Exception):
    pass


class _CrashingStore:
    """The real store, raising before its ``limit``-th write (copy, put, delete)."""

    def __init__(self, inner: S3Store, limit: int) -> None:
        self.inner, self.limit, self.writes = inner, limit, 0

    def _write(self) -> None:
        self.writes += 1
        if self.writes == self.limit:
            raise _CrashError

    def copy(self, source: str, target: str) -> None:
        self._write()
        self.inner.copy(source, target)

    def put_stream(self, key: str, chunks: Any, **kw: Any) -> tuple[int, str]:
        self._write()
        return self.inner.put_stream(key, chunks, **kw)

    def delete_many(self, keys: Any) -> int:
        self._write()
        return self.inner.delete_many(keys)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.fixture
def bucket(s3: MinioServer) -> Iterator[S3Store]:
    name = s3.create_bucket(object_lock=False)
    store = S3Store(
        bucket=name,
        endpoint_url=s3.endpoint_url,
        credentials={"access_key": s3.access_key, "secret_key": s3.secret_key},
    )
    yield store
    delete_bucket(store)


def test_switch_continues_after_a_crash_at_every_write(bucket: S3Store) -> None:
    old = {"a": (b"old a", "text/plain"), "b": (b"old b", "image/png"), "x/c": (b"c", "a/b")}
    new = {"a": (b"new a", "text/plain"), "x/d": (b"d", "image/jpeg")}
    limit = 1
    while True:
        bucket.delete_many(o.key for o in bucket.list(""))
        _put(bucket, old)
        _put(bucket, {f".osp-ops/media.restore-1/{k}": v for k, v in new.items()})
        _put(bucket, {".osp-ops/media.restore-1.restored": (b"", "text/plain")})
        crashing = _CrashingStore(bucket, limit)
        try:
            bucket_archive.switch(crashing, new="media.restore-1", retired="media.old-1")  # type: ignore[arg-type]
        except _CrashError:
            # What the engine does on the rerun: switch again while the staged copy exists.
            if "media.restore-1" in bucket_archive.names(bucket):
                bucket_archive.switch(bucket, new="media.restore-1", retired="media.old-1")
        else:
            break
        assert _live(bucket) == new, limit
        assert _live(bucket, ".osp-ops/media.old-1/") == old, limit
        assert bucket_archive.names(bucket) == ["media.old-1"], limit
        limit += 1
    assert limit > 6  # every write of a switch was a crash point


def test_an_empty_backup_empties_the_bucket_and_a_partial_copy_is_refused(
    bucket: S3Store,
) -> None:
    _put(bucket, {"written-after-the-backup": (b"x", "text/plain")})
    empty = io.BytesIO()
    with tarfile.open(fileobj=empty, mode="w|", format=tarfile.PAX_FORMAT):
        pass
    empty.seek(0)
    assert bucket_archive.import_tar(bucket, "media.restore-4", empty) == 0
    assert bucket_archive.names(bucket) == ["media.restore-4"]  # listed, so switched
    bucket_archive.switch(bucket, new="media.restore-4", retired="media.old-4")
    assert _live(bucket) == {}
    assert bucket_archive.names(bucket) == ["media.old-4"]

    _put(bucket, {".osp-ops/media.restore-5/k": (b"half", "text/plain")})  # no marker
    with pytest.raises(BackupError, match="incomplete"):
        bucket_archive.switch(bucket, new="media.restore-5", retired="media.old-5")
    assert "media.old-5" not in bucket_archive.names(bucket)


def test_export_skips_folder_markers(bucket: S3Store) -> None:
    _put(bucket, {"k1": (b"abc", "image/png")})
    bucket.client.put_object(Bucket=bucket.bucket, Key="folder/", Body=b"")
    out = io.BytesIO()
    assert bucket_archive.export_tar(bucket, out) == 1
    out.seek(0)
    with tarfile.open(fileobj=out, mode="r|") as tar:
        members = [(m.name, m.pax_headers.get(bucket_archive.CONTENT_TYPE)) for m in tar]
    assert members == [("k1", "image/png")]


def test_import_refuses_unsafe_names_and_replaces_a_partial_copy(bucket: S3Store) -> None:
    _put(bucket, {".osp-ops/media.restore-2/leftover": (b"partial", "text/plain")})
    good = io.BytesIO()
    with tarfile.open(fileobj=good, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("k1")
        info.size = 3
        info.pax_headers = {bucket_archive.CONTENT_TYPE: "image/png"}
        tar.addfile(info, io.BytesIO(b"abc"))
    good.seek(0)
    assert bucket_archive.import_tar(bucket, "media.restore-2", good) == 1
    assert _live(bucket, ".osp-ops/media.restore-2/") == {"k1": (b"abc", "image/png")}

    bad = io.BytesIO()
    with tarfile.open(fileobj=bad, mode="w|") as tar:
        info = tarfile.TarInfo("../escape")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    bad.seek(0)
    with pytest.raises(Exception, match="invalid object key"):
        bucket_archive.import_tar(bucket, "media.restore-3", bad)


def test_bucket_names_and_missing_keys(tmp_path: Path) -> None:
    assert tenant_bucket("osp-", "nanterre") == "osp-nanterre"
    with pytest.raises(ConfigError, match="app_s3_bucket_prefix"):
        tenant_bucket("OSP_", "nanterre")
    with pytest.raises(ConfigError, match="app_s3_bucket_prefix"):
        tenant_bucket("osp-", "x" * 62)
    settings = Settings(data_dir=tmp_path, app_storage="s3")
    with pytest.raises(ConfigError, match="app_s3_access_key_id"):
        settings.app_s3_keys()
