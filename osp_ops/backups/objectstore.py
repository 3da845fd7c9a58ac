"""Where backup objects live: a small ``ObjectStore`` protocol and the local directory store.

Every store writes an object atomically: a reader (or a crash) never sees a
complete-looking object that was not fully written. ``open_store`` turns the
operator's ``backup_url`` into a store:

- ``file:///var/lib/osp-ops/backups`` -> :class:`LocalStore`
- ``s3://bucket/prefix`` -> ``osp_ops.backups.s3.S3Store`` (endpoint and region from settings)
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol
from urllib.parse import unquote, urlparse

from osp_ops.backups import failpoints
from osp_ops.domain.errors import BackupError, ConfigError, NotFoundError, TemporaryError

if TYPE_CHECKING:
    from osp_ops.settings import Settings

CHUNK = 1024 * 1024
TMP_MARK = ".osp-tmp-"


@dataclass(frozen=True)
class ObjectInfo:
    """One stored object: its key (relative to the store) and size in bytes."""

    key: str
    size: int


class ObjectStore(Protocol):
    """A flat key -> bytes store. Keys use ``/`` separators and never start with ``/``."""

    url: str

    def put_stream(self, key: str, chunks: Iterable[bytes]) -> tuple[int, str]:
        """Store the concatenated chunks atomically; return (size, sha256 hex) of what was stored."""
        ...

    def get_stream(self, key: str) -> Iterator[bytes]:
        """Yield the object's bytes in chunks; NotFoundError if absent."""
        ...

    def get_range(self, key: str, start: int, length: int) -> bytes:
        """``length`` bytes from offset ``start`` (fewer at the end of the object)."""
        ...

    def head(self, key: str) -> ObjectInfo | None:
        """The object's info, or None if it does not exist."""
        ...

    def list(self, prefix: str) -> list[ObjectInfo]:
        """Complete objects whose key starts with ``prefix``, sorted by key."""
        ...

    def delete(self, key: str) -> None:
        """Delete an object; deleting a missing object is not an error."""
        ...

    def cleanup_incomplete(self, prefix: str) -> int:
        """Remove leftovers of interrupted writes under ``prefix``; return how many."""
        ...


def check_key(key: str) -> str:
    """Refuse keys that could escape the store (``..``, absolute, empty parts)."""
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise BackupError(f"invalid object key {key!r}")
    if any(TMP_MARK in p for p in parts):
        raise BackupError(f"object key {key!r} uses the reserved marker {TMP_MARK!r}")
    return key


class LocalStore:
    """Objects as files under a directory.

    ``put_stream`` writes ``<dir>/.osp-tmp-<random>-<name>`` next to the final file,
    fsyncs it, renames it into place and fsyncs the directory: a killed writer leaves
    only a temp file, which ``list`` ignores and ``cleanup_incomplete`` removes.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = f"file://{root}"

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def put_stream(self, key: str, chunks: Iterable[bytes]) -> tuple[int, str]:
        """Write atomically (temp file, fsync, rename, fsync dir)."""
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"{TMP_MARK}{secrets.token_hex(4)}-{path.name}")
            digest = hashlib.sha256()
            size = 0
            try:
                with open(tmp, "wb") as f:
                    for i, chunk in enumerate(chunks):
                        f.write(chunk)
                        digest.update(chunk)
                        size += len(chunk)
                        if i == 0:
                            failpoints.hit("backup:mid-part")
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    tmp.unlink()
                raise
            _fsync_dir(path.parent)
        except OSError as e:
            raise _os_error(f"cannot write {key}", e) from e
        return size, digest.hexdigest()

    def get_stream(self, key: str) -> Iterator[bytes]:
        """Yield the file in 1 MiB chunks."""
        path = self._path(key)
        try:
            f = open(path, "rb")  # noqa: SIM115 - closed by the generator
        except FileNotFoundError as e:
            raise NotFoundError(f"backup object {key} does not exist") from e
        except OSError as e:
            raise _os_error(f"cannot read {key}", e) from e
        return _read_chunks(f)

    def get_range(self, key: str, start: int, length: int) -> bytes:
        """Read a byte range."""
        try:
            with open(self._path(key), "rb") as f:
                f.seek(start)
                return f.read(length)
        except FileNotFoundError as e:
            raise NotFoundError(f"backup object {key} does not exist") from e
        except OSError as e:
            raise _os_error(f"cannot read {key}", e) from e

    def head(self, key: str) -> ObjectInfo | None:
        """Size of the file, or None."""
        try:
            st = self._path(key).stat()
        except FileNotFoundError:
            return None
        except OSError as e:
            raise _os_error(f"cannot stat {key}", e) from e
        return ObjectInfo(key, st.st_size)

    def _walk(self, prefix: str) -> Iterator[tuple[Path, str]]:
        # Walk only below the deepest directory the prefix names.
        base_rel = prefix.rpartition("/")[0]
        base = self.root / base_rel if base_rel else self.root
        if not base.is_dir():
            return
        for dirpath, _dirs, files in os.walk(base):
            for name in files:
                full = Path(dirpath) / name
                rel = full.relative_to(self.root).as_posix()
                if rel.startswith(prefix):
                    yield full, rel

    def list(self, prefix: str) -> list[ObjectInfo]:
        """Complete objects under the prefix (temp files are not objects)."""
        out = []
        try:
            for full, rel in self._walk(prefix):
                if TMP_MARK not in full.name:
                    out.append(ObjectInfo(rel, full.stat().st_size))
        except OSError as e:
            raise _os_error(f"cannot list {prefix}", e) from e
        return sorted(out, key=lambda o: o.key)

    def delete(self, key: str) -> None:
        """Remove the file and any directories left empty."""
        path = self._path(key)
        try:
            path.unlink(missing_ok=True)
        except OSError as e:
            raise _os_error(f"cannot delete {key}", e) from e
        parent = path.parent
        while parent != self.root:
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent

    def cleanup_incomplete(self, prefix: str) -> int:
        """Remove temp files left by killed writers."""
        count = 0
        for full, _rel in list(self._walk(prefix)):
            if full.name.startswith(TMP_MARK):
                with contextlib.suppress(FileNotFoundError):
                    full.unlink()
                    count += 1
        return count


def _read_chunks(f: BinaryIO) -> Iterator[bytes]:
    with f:
        while chunk := f.read(CHUNK):
            yield chunk


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _os_error(what: str, e: OSError) -> BackupError | TemporaryError:
    if e.errno in (errno.EAGAIN, errno.EINTR, errno.EBUSY):
        return TemporaryError(f"{what}: {e.strerror}")
    return BackupError(f"{what}: {e.strerror or e}")


def open_store(url: str, settings: Settings | None = None) -> ObjectStore:
    """The store for ``file:///dir`` or ``s3://bucket[/prefix]``."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise ConfigError(f"backup URL {url!r}: file URLs take no host (file:///dir)")
        return LocalStore(Path(unquote(parsed.path)))
    if parsed.scheme == "s3":
        from osp_ops.backups.s3 import S3Store

        if not parsed.netloc:
            raise ConfigError(f"backup URL {url!r} names no bucket (s3://bucket/prefix)")
        return S3Store(
            bucket=parsed.netloc,
            prefix=parsed.path.strip("/"),
            endpoint_url=settings.s3_endpoint_url if settings else None,
            region=settings.s3_region if settings else "us-east-1",
            object_lock_days=settings.s3_object_lock_days if settings else 0,
        )
    raise ConfigError(f"backup URL {url!r}: use file:///dir or s3://bucket/prefix")
