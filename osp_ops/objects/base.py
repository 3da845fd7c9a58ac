"""The object-store seam: where backup objects live, as a small protocol.

Every store writes an object atomically: a reader (or a crash) never sees a
complete-looking object that was not fully written. This module imports no
implementation: ``local.py`` (a directory) and ``s3.py`` (S3, MinIO, Ceph RGW) implement
it, and ``factory.open_store`` picks one from a URL.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

from osp_ops.domain.errors import BackupError

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
