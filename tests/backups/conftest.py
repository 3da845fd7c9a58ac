"""Fixtures of the backup tests: keys, a sample tenant database, files, stores."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from osp_ops.backups import LocalStore, new_identity
from osp_ops.objects.s3 import S3Store
from tests.backups import sampledata
from tests.fixtures.backup_data import Keys, SampleDb
from tests.fixtures.minio import MinioServer
from tests.fixtures.postgres import PG_BIN, PostgresServer


@pytest.fixture(scope="session")
def keys() -> Keys:
    t = new_identity()
    r = new_identity()
    return Keys(t[0], t[1], r[0], r[1])


@pytest.fixture(scope="session")
def pg_bin() -> Path:
    return PG_BIN


@pytest.fixture(scope="session")
def sample_db(postgres: PostgresServer) -> SampleDb:
    """A Decidim-like database with multilingual JSON text (shared: never modify it)."""
    dsn = postgres.create_database(f"src_{secrets.token_hex(4)}")
    counts = sampledata.populate(dsn, proposals=300)
    return SampleDb(dsn, counts, sampledata.fingerprint(dsn))


@pytest.fixture
def files_dir(tmp_path: Path) -> Path:
    """Uploaded files: nested dirs, unicode names, a binary blob."""
    root = tmp_path / "uploads"
    (root / "decidim" / "attachments" / "2026").mkdir(parents=True)
    (root / "decidim" / "attachments" / "2026" / "compte-rendu-réunion.txt").write_text(
        "Réunion du conseil de quartier — 28 novembre\n" * 200, "utf-8"
    )
    (root / "decidim" / "avatars").mkdir()
    (root / "decidim" / "avatars" / "صورة.bin").write_bytes(secrets.token_bytes(300_000))
    (root / "empty-dir").mkdir()
    return root


@pytest.fixture
def local_store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "store")


@pytest.fixture
def s3_store(s3: MinioServer) -> Iterator[S3Store]:
    """An S3 store on a fresh object-locked bucket, small parts so tests go multipart."""
    bucket = s3.create_bucket(object_lock=True)
    yield S3Store(
        bucket=bucket,
        prefix="backups",
        endpoint_url=s3.endpoint_url,
        region=s3.region,
        base_part_size=5 * 1024 * 1024,
        credentials={"access_key": s3.access_key, "secret_key": s3.secret_key},
    )
