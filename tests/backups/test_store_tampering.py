"""Store tampering: 24 kinds of corruption of a real backup, in the local store and in
MinIO (bytes, sizes, parts, manifests, keys, swaps, deletions). Each is detected by
verify, and none leads to data being deleted: after cleanup (what `backup run` does
first) and prune (a day later, past the incomplete grace), every object that was there
is still there."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from osp_ops.backups import (
    CommandSource,
    DirectorySource,
    LocalStore,
    ObjectStore,
    cleanup,
    list_backups,
    manifest_key,
    prune,
    run_backup,
    verify_backup,
)
from osp_ops.backups.manifest import ManifestBody, backup_prefix, manifest_bytes, seal
from osp_ops.domain.spec import Retention
from osp_ops.objects.s3 import S3Store
from tests.factories import SPEC_YAML
from tests.fixtures.backup_data import Keys
from tests.fixtures.minio import MinioServer

pytestmark = pytest.mark.integration

DB, FILES, SPEC, MANIFEST = "db.dump.zst.age", "files.tar.zst.age", "spec.yaml", "manifest.json"


class Box:
    """One tenant's two backups (``other`` first, ``victim`` newest) in one store."""

    def __init__(self, store: ObjectStore, tenant: str, keys: Keys, files: Path) -> None:
        self.store, self.tenant, self.keys = store, tenant, keys
        self.mac = manifest_key(keys.tenant_secret)
        self.other = self._backup(files, 3, datetime.now(UTC) - timedelta(minutes=2))
        self.victim = self._backup(files, 1, None)

    def _backup(self, files: Path, seed: int, now: datetime | None) -> str:
        src = CommandSource(["sh", "-c", f"seq {seed} 30000 | sed 's/$/ conseil/'"],
                            kind="pg_dump-plain")  # fmt: skip
        return run_backup(
            source=src, files=DirectorySource(files), store=self.store, tenant=self.tenant,
            spec_yaml=SPEC_YAML, recipients=self.keys.recipients, app_version="0.28.4",
            row_counts={"decidim_users": seed}, mac_key=self.mac, now=now,
        ).backup_id  # fmt: skip

    def key(self, name: str, backup: str | None = None) -> str:
        return f"{backup_prefix(self.tenant, backup or self.victim)}/{name}"

    def read(self, name: str, backup: str | None = None) -> bytes:
        return b"".join(self.store.get_stream(self.key(name, backup)))

    def write(self, name: str, data: bytes) -> None:
        self.store.put_stream(self.key(name), [data])

    def objects(self) -> dict[str, int]:
        return {o.key: o.size for o in self.store.list(f"{self.tenant}/")}

    def body(self) -> dict[str, object]:
        return dict(json.loads(self.read(MANIFEST))["body"])

    def reseal(self, body: dict[str, object], mac_key: bytes | None = None) -> None:
        self.write(MANIFEST, manifest_bytes(seal(ManifestBody.model_validate(body), mac_key)))


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x5A]) + data[at + 1 :]


def _edit_object(field: str, value: object) -> Callable[[Box], None]:
    def edit(b: Box) -> None:
        body = b.body()
        objects = body["objects"]
        assert isinstance(objects, list)
        objects[0][field] = value(objects[0][field]) if callable(value) else value
        b.reseal(body)

    return edit


def _resealed(field: str, value: object) -> Callable[[Box], None]:
    def edit(b: Box) -> None:
        body = b.body()
        body[field] = value
        b.reseal(body)

    return edit


def _swap(b: Box, one: str, two: str) -> None:
    first, second = b.read(one), b.read(two)
    b.write(one, second)
    b.write(two, first)


TAMPERINGS: dict[str, Callable[[Box], None]] = {
    # bytes
    "db-flip-first-byte": lambda b: b.write(DB, _flip(b.read(DB), 0)),
    "db-flip-middle-byte": lambda b: b.write(DB, _flip(b.read(DB), len(b.read(DB)) // 2)),
    "db-flip-last-byte": lambda b: b.write(DB, _flip(b.read(DB), len(b.read(DB)) - 1)),
    "files-flip-byte": lambda b: b.write(FILES, _flip(b.read(FILES), 100)),
    "spec-edited": lambda b: b.write(SPEC, b.read(SPEC).replace(b"Nanterre", b"Nantere")),
    # sizes
    "db-truncated-half": lambda b: b.write(DB, b.read(DB)[: len(b.read(DB)) // 2]),
    "db-emptied": lambda b: b.write(DB, b""),
    "files-appended": lambda b: b.write(FILES, b.read(FILES) + b"\0" * 17),
    # parts (an object made of another's parts)
    "db-spliced-with-other": lambda b: b.write(DB, b.read(DB)[:200] + b.read(DB, b.other)[200:]),
    # manifests
    "manifest-flip-byte": lambda b: b.write(MANIFEST, _flip(b.read(MANIFEST), 40)),
    "manifest-not-json": lambda b: b.write(MANIFEST, b"{not json"),
    "manifest-emptied": lambda b: b.write(MANIFEST, b""),
    "manifest-row-counts-edited": lambda b: b.write(
        MANIFEST, b.read(MANIFEST).replace(b'"decidim_users": 1', b'"decidim_users": 7')
    ),
    "manifest-size-resealed": _edit_object("size", lambda v: v + 1),
    "manifest-sha-resealed": _edit_object("sha256", "0" * 64),
    "manifest-stale-copy": lambda b: b.write(MANIFEST, b.read(MANIFEST, b.other)),
    # keys
    "manifest-foreign-mac": lambda b: b.reseal(b.body(), b"\x01" * 32),
    "manifest-recipients-resealed": _resealed(
        "encryption", {"method": "age", "recipients": ["age1forged"]}
    ),
    # swaps
    "db-swapped-with-other-backup": lambda b: b.write(DB, b.read(DB, b.other)),
    "db-and-files-swapped": lambda b: _swap(b, DB, FILES),
    # deletions
    "db-deleted": lambda b: b.store.delete(b.key(DB)),
    "files-deleted": lambda b: b.store.delete(b.key(FILES)),
    "manifest-deleted": lambda b: b.store.delete(b.key(MANIFEST)),
    "extra-object": lambda b: b.write("notes.txt", b"added later"),
}


def _check(store: ObjectStore, name: str, n: int, keys: Keys, files: Path) -> None:
    box = Box(store, f"t{n:02d}", keys, files)
    assert verify_backup(store, box.tenant, box.victim, [keys.tenant_secret], mac_key=box.mac).ok
    TAMPERINGS[name](box)
    report = verify_backup(store, box.tenant, box.victim, [keys.tenant_secret], mac_key=box.mac)
    assert not report.ok, f"{name}: not detected"
    assert report.problems
    before = box.objects()
    completed = {box.victim, box.other}  # what the state DB recorded
    cleanup(store, box.tenant, completed=completed)
    result = prune(store, box.tenant, Retention(), datetime.now(UTC) + timedelta(days=1),
                   verified={box.other}, completed=completed)  # fmt: skip
    assert box.objects() == before, f"{name}: {result}"  # nothing deleted
    states = {i.backup_id: i.state for i in list_backups(store, box.tenant, mac_key=box.mac,
                                                          completed=completed)}  # fmt: skip
    assert states[box.other] == "complete", name
    assert box.victim in states, name


def test_at_least_20_kinds() -> None:
    assert len(TAMPERINGS) >= 20


def test_local_store_tampering(tmp_path: Path, keys: Keys, files_dir: Path) -> None:
    for n, name in enumerate(sorted(TAMPERINGS)):
        _check(LocalStore(tmp_path / "store"), name, n, keys, files_dir)


@pytest.fixture
def minio_store(s3: MinioServer) -> Iterator[S3Store]:
    yield S3Store(
        bucket=s3.create_bucket(object_lock=False), prefix="backups",
        endpoint_url=s3.endpoint_url, region=s3.region,
        credentials={"access_key": s3.access_key, "secret_key": s3.secret_key},
    )  # fmt: skip


def test_minio_store_tampering(minio_store: S3Store, keys: Keys, files_dir: Path) -> None:
    for n, name in enumerate(sorted(TAMPERINGS)):
        _check(minio_store, name, n, keys, files_dir)
