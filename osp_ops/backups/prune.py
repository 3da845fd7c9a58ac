"""Prune: apply the GFS retention (``osp_ops.domain.retention``) to the store.

Complete backups are candidates; the newest verified one is never deleted. Incomplete
backups (no manifest, and not in ``completed``, the state DB's record) older than
``incomplete_grace`` are removed too: a younger one may be a backup still running.
Damaged backups (a manifest missing or that does not check) are left in place and
reported: they are evidence, and an operator decides (``backup repair``).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo

from osp_ops.backups.catalog import delete_backup, list_backups
from osp_ops.domain.retention import Candidate, select
from osp_ops.domain.spec import Retention
from osp_ops.objects.base import ObjectStore


@dataclass(frozen=True)
class PruneResult:
    """What prune kept (with reasons), deleted, and left alone."""

    kept: dict[str, tuple[str, ...]] = field(default_factory=dict)
    deleted: tuple[str, ...] = ()
    incomplete_deleted: tuple[str, ...] = ()
    damaged: tuple[str, ...] = ()
    dry_run: bool = False


def prune(
    store: ObjectStore,
    tenant: str,
    retention: Retention,
    now: datetime,
    *,
    verified: Collection[str] = (),
    completed: Collection[str] = (),
    tz: tzinfo = UTC,
    incomplete_grace: timedelta = timedelta(hours=6),
    dry_run: bool = False,
) -> PruneResult:
    """Delete the backups retention does not keep; ``verified``: ids whose last verify
    passed; ``completed``: ids the state DB recorded as completed (never cleaned up)."""
    infos = list_backups(store, tenant, completed=completed)
    complete = [i for i in infos if i.state == "complete"]
    selection = select(
        [Candidate(i.backup_id, i.taken_at, i.backup_id in verified) for i in complete],
        retention,
        tz=tz,
    )
    stale = [i for i in infos if i.state == "incomplete" and i.taken_at < now - incomplete_grace]
    if not dry_run:
        by_id = {i.backup_id: i for i in infos}
        for backup_id in selection.delete:
            delete_backup(store, by_id[backup_id])
        for info in stale:
            delete_backup(store, info)
    return PruneResult(
        kept=selection.keep,
        deleted=selection.delete,
        incomplete_deleted=tuple(i.backup_id for i in stale),
        damaged=tuple(i.backup_id for i in infos if i.state == "damaged"),
        dry_run=dry_run,
    )
