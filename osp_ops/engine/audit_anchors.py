"""Audit anchors in the backup store: ``_audit/anchors/<row id>-<UTC time>.json``.

An anchor is the audit head (last row id and MAC, first keyed row), MACed with the
audit key (``store/audit.py``). It lives outside the state DB, so deleting every row
and resetting the head is detected; with ``s3_object_lock_days`` each anchor is locked
like every backup object. Tenant slugs are DNS labels, so ``_audit/`` is never a
tenant's prefix.
"""

from __future__ import annotations

from collections.abc import Callable

from osp_ops.backups import ObjectStore

PREFIX = "_audit/anchors/"


class StoreAnchors:
    """``store.audit.AnchorStore`` over an object store, opened on first use."""

    def __init__(self, open_store: Callable[[], ObjectStore]) -> None:
        self._open = open_store
        self._store: ObjectStore | None = None

    def _get(self) -> ObjectStore:
        if self._store is None:
            self._store = self._open()
        return self._store

    def write(self, name: str, data: bytes) -> None:
        """Store one anchor."""
        self._get().put_stream(PREFIX + name, [data])

    def latest(self) -> tuple[str, bytes] | None:
        """The anchor of the highest row id (names sort by it), or None."""
        store = self._get()
        objects = store.list(PREFIX)
        if not objects:
            return None
        key = max(o.key for o in objects)
        return key.removeprefix(PREFIX), b"".join(store.get_stream(key))
