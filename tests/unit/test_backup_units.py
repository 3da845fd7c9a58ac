"""Unit tests of the backup building blocks that need no service."""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from osp_ops.backups import LocalStore, new_identity, open_store
from osp_ops.backups.manifest import (
    ManifestBody,
    ObjectEntry,
    backup_prefix,
    backup_time,
    manifest_bytes,
    manifest_key,
    new_backup_id,
    parse_manifest,
    seal,
)
from osp_ops.backups.pipeline import (
    CommandSource,
    Encoding,
    decode_object,
    encode_to_store,
)
from osp_ops.backups.streams import ChunkPipe
from osp_ops.domain.errors import BackupError, ConfigError, NotFoundError
from osp_ops.domain.libpq import libpq_env
from osp_ops.objects.base import TMP_MARK
from osp_ops.objects.parts import MAX_PARTS, MIB, Parts, part_size

pytestmark = pytest.mark.unit


def test_local_store_roundtrip_and_listing(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    size, sha = store.put_stream("t/2026/11/28/x/a.bin", [b"abc", b"def"])
    assert size == 6 and len(sha) == 64
    assert b"".join(store.get_stream("t/2026/11/28/x/a.bin")) == b"abcdef"
    assert store.get_range("t/2026/11/28/x/a.bin", 2, 3) == b"cde"
    assert store.head("t/2026/11/28/x/a.bin").size == 6  # type: ignore[union-attr]
    assert store.head("t/nope") is None
    assert [o.key for o in store.list("t/")] == ["t/2026/11/28/x/a.bin"]
    assert store.list("other/") == []
    store.delete("t/2026/11/28/x/a.bin")
    assert store.list("t/") == [] and not (tmp_path / "t").exists()
    with pytest.raises(NotFoundError):
        list(store.get_stream("t/2026/11/28/x/a.bin"))


def test_local_store_failed_write_leaves_nothing(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)

    def chunks():
        yield b"partial"
        raise RuntimeError("source died")

    with pytest.raises(RuntimeError):
        store.put_stream("t/obj", chunks())
    assert store.list("t/") == [] and list((tmp_path / "t").iterdir()) == []


def test_local_store_cleanup_incomplete(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.put_stream("t/a", [b"x"])
    (tmp_path / "t" / f"{TMP_MARK}dead-b").write_bytes(b"half")
    assert [o.key for o in store.list("t/")] == ["t/a"]
    assert store.cleanup_incomplete("t/") == 1
    assert store.cleanup_incomplete("t/") == 0


@pytest.mark.parametrize("key", ["", "/abs", "a/../b", "a//b", f"a/{TMP_MARK}x"])
def test_bad_keys_refused(tmp_path: Path, key: str) -> None:
    with pytest.raises(BackupError):
        LocalStore(tmp_path).put_stream(key, [b""])


def test_open_store_urls(tmp_path: Path) -> None:
    assert isinstance(open_store(f"file://{tmp_path}"), LocalStore)
    for bad in ["ftp://x", "file://host/x", "s3://"]:
        with pytest.raises(ConfigError):
            open_store(bad)


def test_part_sizes_fit_ten_thousand_parts() -> None:
    assert part_size(0) == 8 * MIB and part_size(999) == 8 * MIB and part_size(1000) == 16 * MIB
    total = sum(part_size(i) for i in range(MAX_PARTS))
    assert total > 5 * 1024**4  # more than S3's 5 TiB object limit
    assert part_size(MAX_PARTS - 1) <= 5 * 1024**3  # each part within S3's 5 GiB
    with pytest.raises(BackupError):
        part_size(MAX_PARTS)


def _body(**kw: object) -> ManifestBody:
    now = datetime(2026, 11, 28, 16, 15, tzinfo=UTC)
    entry = ObjectEntry(
        name="db.dump.zst.age", role="database", format="pg_dump-custom", size=10,
        sha256="a" * 64, plain_size=20, plain_sha256="b" * 64, compression="zstd",
        encrypted=True, seconds=0.1,
    )  # fmt: skip
    data: dict[str, object] = dict(
        tenant="nanterre", backup_id="20261128T161500Z-abcdef", started_at=now,
        completed_at=now, app_version="0.28.4", row_counts={"decidim_users": 3},
        objects=(entry,),
    )  # fmt: skip
    data.update(kw)
    return ManifestBody(**data)  # type: ignore[arg-type]


def test_manifest_checksum_and_mac() -> None:
    secret, _ = new_identity()
    key = manifest_key(secret)
    raw = manifest_bytes(seal(_body(), key))
    assert parse_manifest(raw, mac_key=key).body == _body()
    # Reformatting does not matter; any change of a value does.
    assert parse_manifest(json.dumps(json.loads(raw)).encode()).backup_id
    edited = json.loads(raw)
    edited["body"]["row_counts"]["decidim_users"] = 4
    with pytest.raises(BackupError, match="checksum"):
        parse_manifest(json.dumps(edited).encode())
    # Recomputing the plain checksum is not enough with a MAC key.
    forged = manifest_bytes(seal(_body(row_counts={"decidim_users": 4})))
    with pytest.raises(BackupError, match="MAC"):
        parse_manifest(forged, mac_key=key)
    other = manifest_key(new_identity()[0])
    with pytest.raises(BackupError, match="MAC"):
        parse_manifest(raw, mac_key=other)
    with pytest.raises(BackupError, match="malformed"):
        parse_manifest(b"{not json")


def test_backup_ids_sort_by_time_and_map_to_keys() -> None:
    a = new_backup_id(datetime(2026, 11, 28, 16, 15, 0, tzinfo=UTC))
    b = new_backup_id(datetime(2026, 11, 28, 16, 15, 1, tzinfo=UTC))
    assert a < b and a.startswith("20261128T161500Z-") and len(a) == 23
    assert backup_time(a) == datetime(2026, 11, 28, 16, 15, tzinfo=UTC)
    assert backup_prefix("nanterre", a) == f"nanterre/2026/11/28/{a}"
    with pytest.raises(BackupError):
        backup_time("2026-11-28")


def test_libpq_env_keeps_password_off_argv() -> None:
    env = libpq_env("postgresql://app%40x:p%3Ass@db.example:5433/decidim?sslmode=require")
    assert env == {
        "PGDATABASE": "decidim", "PGHOST": "db.example", "PGPORT": "5433",
        "PGUSER": "app@x", "PGPASSWORD": "p:ss", "PGSSLMODE": "require",
    }  # fmt: skip


def test_encode_decode_and_wrong_key(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    secret, public = new_identity()
    src = CommandSource(["sh", "-c", "seq 1 200000"], kind="text")
    stored = encode_to_store(
        source=src, store=store, key="t/x.zst.age", encoding=Encoding((public,))
    )
    assert stored.plain_size == len(b"".join(f"{i}\n".encode() for i in range(1, 200001)))
    with decode_object(store=store, key="t/x.zst.age", encrypted=True, identities=[secret]) as (
        r,
        result,
    ):
        assert r.read().startswith(b"1\n2\n3\n")
        assert result().plain_sha256 == stored.plain_sha256
    with (
        pytest.raises(BackupError, match="decrypt"),
        decode_object(
            store=store, key="t/x.zst.age", encrypted=True, identities=[new_identity()[0]]
        ) as (r, result),
    ):
        r.read()


def test_failed_source_stores_nothing(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    src = CommandSource(["sh", "-c", "seq 1 100000; echo boom >&2; exit 3"], kind="text")
    with pytest.raises(BackupError, match="status 3: boom"):
        encode_to_store(source=src, store=store, key="t/y.zst", encoding=Encoding())
    assert store.list("t/") == []


def test_chunk_pipe_bounded_and_abort() -> None:
    pipe = ChunkPipe(chunk_size=4, depth=2)
    pipe.write(b"abcdefgh")  # two chunks fill the queue
    pipe.abort()
    with pytest.raises(Exception, match="reader went away"):
        pipe.write(b"ijklmnop")
    pipe2 = ChunkPipe(chunk_size=4, depth=8)
    pipe2.write(b"abcdef")
    pipe2.close()
    assert io.BytesIO(b"".join(pipe2.chunks())).read() == b"abcdef"


def test_chunk_pipe_cancel_stops_both_sides() -> None:
    pipe = ChunkPipe(chunk_size=4, depth=1)
    pipe.write(b"abcd")
    pipe.cancel(BackupError("stage failed"))
    with pytest.raises(Exception, match="reader went away"):
        pipe.write(b"efgh")
    with pytest.raises(BackupError, match="stage failed"):
        list(pipe.chunks())


def test_store_failure_stops_every_stage(tmp_path: Path) -> None:
    class FailingStore(LocalStore):
        def put_stream(self, key: str, chunks: Iterable[bytes]) -> tuple[int, str]:
            for i, _ in enumerate(chunks):
                if i == 2:
                    raise BackupError("store went away")
            raise AssertionError("unreachable")

    _, public = new_identity()
    src = CommandSource(["sh", "-c", "head -c 50000000 /dev/urandom"], kind="bin")
    with pytest.raises(BackupError, match="store went away"):
        encode_to_store(
            source=src, store=FailingStore(tmp_path), key="t/z", encoding=Encoding((public,))
        )
    assert src._proc is not None and src._proc.poll() is not None  # the source was stopped


def test_s3_parts_are_exact_and_rewindable() -> None:
    parts = Parts()
    for i in range(5):
        parts.add(bytes([65 + i]) * 3)
    first = parts.take(7)
    assert len(first) == 7 and parts.size == 8
    assert first.read() == b"AAABBBC"
    first.seek(2)
    assert first.read(3) == b"ABB"
    assert first.seek(0, io.SEEK_END) == 7 and first.read() == b""
    first.seek(0)
    assert first.read() == b"AAABBBC"  # a retry sends the same bytes
    rest = parts.take(100)
    assert rest.read() == b"CCDDDEEE" and parts.size == 0 and len(parts.take(5)) == 0
