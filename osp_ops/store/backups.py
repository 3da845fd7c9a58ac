"""The backup and drill cache of the state DB (the object store stays the source of truth)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from osp_ops.store.db import Database, utcnow
from osp_ops.store.tables import BackupRow, DrillRow


@dataclass(frozen=True)
class BackupRecord:
    """A cached backup."""

    id: str
    tenant: str
    created_at: datetime
    status: str
    size: int
    verified_at: datetime | None  # the last verify that passed
    verify_result: str | None = None  # the last verify: passed | failed | damaged
    verify_problem: str | None = None
    verify_at: datetime | None = None
    manifest: dict[str, Any] | None = None


@dataclass(frozen=True)
class DrillRecord:
    """A recorded restore drill."""

    id: str
    tenant: str
    backup_id: str
    started_at: datetime
    rto_seconds: float | None
    result: str
    details: dict[str, Any]


class Backups:
    """Backups and drills as the state DB remembers them."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def record(
        self,
        *,
        tenant: str,
        backup_id: str,
        created_at: datetime,
        size: int,
        manifest: dict[str, Any],
        status: str = "complete",
    ) -> None:
        """Insert or update a backup."""
        with self.db.transaction() as s:
            row = s.get(BackupRow, backup_id)
            if row is None:
                s.add(
                    BackupRow(
                        id=backup_id,
                        tenant=tenant,
                        created_at=created_at,
                        status=status,
                        size=size,
                        verified_at=None,
                        manifest=manifest,
                    )
                )
            else:
                row.status, row.size, row.manifest = status, size, manifest

    def record_verify(
        self,
        *,
        tenant: str,
        backup_id: str,
        taken_at: datetime,
        result: str,
        problem: str | None = None,
    ) -> None:
        """Record a verify's result (``passed``, ``failed`` or ``damaged``); a backup the
        cache did not know (found in the store) gets a row."""
        now = utcnow()
        with self.db.transaction() as s:
            row = s.get(BackupRow, backup_id)
            if row is None:
                row = BackupRow(
                    id=backup_id, tenant=tenant, created_at=taken_at, status="complete",
                    size=0, verified_at=None, manifest={},
                )  # fmt: skip
                s.add(row)
            row.verify_result, row.verify_problem, row.verify_at = result, problem, now
            if result == "passed":
                row.verified_at, row.status = now, "verified"
            elif row.status == "verified":
                row.status = result

    def forget(self, backup_ids: list[str]) -> None:
        """Drop deleted backups from the cache."""
        with self.db.transaction() as s:
            for backup_id in backup_ids:
                row = s.get(BackupRow, backup_id)
                if row is not None:
                    s.delete(row)

    def for_tenant(self, tenant: str) -> list[BackupRecord]:
        """The tenant's cached backups, oldest first."""
        with self.db.transaction() as s:
            rows = s.scalars(
                select(BackupRow).where(BackupRow.tenant == tenant).order_by(BackupRow.id)
            ).all()
            return [
                BackupRecord(
                    r.id,
                    r.tenant,
                    r.created_at,
                    r.status,
                    r.size,
                    r.verified_at,
                    r.verify_result,
                    r.verify_problem,
                    r.verify_at,
                    dict(r.manifest or {}),
                )
                for r in rows
            ]

    def verified_ids(self, tenant: str) -> set[str]:
        """Ids of the tenant's backups whose last verify passed."""
        return {b.id for b in self.for_tenant(tenant) if b.verify_result == "passed"}

    def completed_ids(self, tenant: str) -> set[str]:
        """Ids of the backups the state DB knows were completed (it records a backup
        after its manifest was written, or when a verify found it in the store)."""
        return {b.id for b in self.for_tenant(tenant)}

    def record_drill(
        self,
        *,
        drill_id: str,
        tenant: str,
        backup_id: str,
        started_at: datetime,
        rto_seconds: float | None,
        result: str,
        details: dict[str, Any],
    ) -> None:
        """Insert or update a drill."""
        with self.db.transaction() as s:
            row = s.get(DrillRow, drill_id)
            if row is None:
                s.add(
                    DrillRow(
                        id=drill_id,
                        tenant=tenant,
                        backup_id=backup_id,
                        started_at=started_at,
                        rto_seconds=rto_seconds,
                        result=result,
                        details=details,
                    )
                )
            else:
                row.rto_seconds, row.result, row.details = rto_seconds, result, details

    def drills(self, tenant: str) -> list[DrillRecord]:
        """The tenant's drills, oldest first."""
        with self.db.transaction() as s:
            rows = s.scalars(
                select(DrillRow).where(DrillRow.tenant == tenant).order_by(DrillRow.started_at)
            ).all()
            return [
                DrillRecord(
                    r.id,
                    r.tenant,
                    r.backup_id,
                    r.started_at,
                    r.rto_seconds,
                    r.result,
                    dict(r.details),
                )
                for r in rows
            ]
