"""The list of a tenant's backups, read from the object store (the source of truth).

The state DB may be empty or lost: listing the store finds every backup. A backup
directory with a readable manifest is ``complete``; one without (an interrupted run) is
``incomplete``; one whose manifest does not parse or check, or that the caller knows was
completed (``completed``: the state DB recorded it) but has no manifest, is ``damaged``.
Damaged backups are kept: only retention or an explicit purge deletes a backup.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from osp_ops.backups.manifest import (
    BACKUP_ID,
    MANIFEST,
    Manifest,
    backup_prefix,
    backup_time,
    parse_manifest,
)
from osp_ops.domain.errors import BackupError, NotFoundError
from osp_ops.objects.base import ObjectInfo, ObjectStore

State = Literal["complete", "incomplete", "damaged"]


@dataclass(frozen=True)
class BackupInfo:
    """One backup as found in the store."""

    tenant: str
    backup_id: str
    taken_at: datetime
    state: State
    prefix: str
    objects: tuple[ObjectInfo, ...]
    manifest: Manifest | None = None
    problem: str | None = None

    @property
    def stored_bytes(self) -> int:
        """Bytes stored for this backup, manifest included."""
        return sum(o.size for o in self.objects)


def _group(store: ObjectStore, tenant: str) -> dict[str, list[ObjectInfo]]:
    groups: dict[str, list[ObjectInfo]] = {}
    for obj in store.list(f"{tenant}/"):
        parts = obj.key.split("/")
        # <tenant>/<YYYY>/<MM>/<DD>/<backup-id>/<name>
        if len(parts) != 6 or not BACKUP_ID.match(parts[4]):
            continue
        groups.setdefault(parts[4], []).append(obj)
    return groups


MANIFEST_MISSING = "manifest missing, though the state DB recorded the backup complete"


def read_manifest(
    store: ObjectStore, tenant: str, backup_id: str, *, mac_key: bytes | None = None
) -> Manifest:
    """Read and check one backup's manifest; NotFoundError without one."""
    key = f"{backup_prefix(tenant, backup_id)}/{MANIFEST}"
    if store.head(key) is None:
        raise NotFoundError(f"backup {tenant}/{backup_id} has no manifest (incomplete or absent)")
    data = b"".join(store.get_stream(key))
    manifest = parse_manifest(data, mac_key=mac_key)
    if manifest.tenant != tenant or manifest.backup_id != backup_id:
        raise BackupError(
            f"manifest at {key} describes {manifest.tenant}/{manifest.backup_id}: "
            "stale or misplaced manifest"
        )
    return manifest


def list_backups(
    store: ObjectStore,
    tenant: str,
    *,
    mac_key: bytes | None = None,
    completed: Collection[str] = (),
) -> list[BackupInfo]:
    """Every backup of the tenant, oldest first, complete or not; ``completed``: ids known
    (from the state DB) to have been completed, damaged when their manifest is gone."""
    out = []
    for backup_id, objs in sorted(_group(store, tenant).items()):
        prefix = backup_prefix(tenant, backup_id)
        names = {o.key.rsplit("/", 1)[1] for o in objs}
        manifest = None
        problem = None
        state: State
        if MANIFEST not in names and backup_id in completed:
            state, problem = "damaged", MANIFEST_MISSING
        elif MANIFEST not in names:
            state = "incomplete"
        else:
            try:
                manifest = read_manifest(store, tenant, backup_id, mac_key=mac_key)
                state = "complete"
            except (BackupError, NotFoundError) as e:
                state, problem = "damaged", str(e)
        out.append(
            BackupInfo(
                tenant=tenant,
                backup_id=backup_id,
                taken_at=backup_time(backup_id),
                state=state,
                prefix=prefix,
                objects=tuple(objs),
                manifest=manifest,
                problem=problem,
            )
        )
    return out


def delete_backup(store: ObjectStore, info: BackupInfo) -> None:
    """Delete a backup: the manifest first, so it stops existing before its objects go."""
    manifest = f"{info.prefix}/{MANIFEST}"
    store.delete(manifest)
    for obj in info.objects:
        if obj.key != manifest:
            store.delete(obj.key)


def cleanup(store: ObjectStore, tenant: str, *, completed: Collection[str]) -> list[str]:
    """Delete what interrupted backups of the tenant left; return the ids.

    Only backups that both the store (no manifest) and the caller (``completed``, the
    state DB's record) show as never completed: a lost manifest never deletes data.
    Run it while holding the tenant's lease: a backup in progress looks incomplete.
    """
    store.cleanup_incomplete(f"{tenant}/")
    removed = []
    for info in list_backups(store, tenant, completed=completed):
        if info.state == "incomplete":
            delete_backup(store, info)
            removed.append(info.backup_id)
    return removed
