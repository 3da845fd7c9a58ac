"""The append-only, hash-chained audit log.

Each row's hash is SHA-256 over the previous row's hash and the row's canonical JSON;
``audit_head`` keeps the last id and hash, so editing, deleting or appending behind
osp-ops' back is detected by ``verify``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from osp_ops.store.db import Database, utcnow
from osp_ops.store.tables import AuditHeadRow, AuditRow

GENESIS = "0" * 64


def _row_hash(
    prev: str,
    id_: int,
    at: datetime,
    actor: str,
    tenant: str | None,
    action: str,
    details: dict[str, Any],
) -> str:
    body = json.dumps(
        {
            "id": id_,
            "at": at.isoformat(),
            "actor": actor,
            "tenant": tenant,
            "action": action,
            "details": details,
        },
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256((prev + body).encode()).hexdigest()


@dataclass(frozen=True)
class AuditEntry:
    """One audit row."""

    id: int
    at: datetime
    actor: str
    tenant: str | None
    action: str
    details: dict[str, Any]


@dataclass(frozen=True)
class AuditReport:
    """Result of verifying the chain."""

    ok: bool
    rows: int
    problems: list[str]


class AuditLog:
    """Append and verify audit entries."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def append(
        self,
        *,
        actor: str,
        action: str,
        tenant: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> AuditEntry:
        """Append one entry (serialized with the head row's lock)."""
        details = details or {}
        insert = pg_insert if self.db.is_postgresql else sqlite_insert
        with self.db.transaction() as s:
            # The head row must exist before it is locked: two first appends racing to
            # create it would otherwise collide on its primary key.
            s.execute(
                insert(AuditHeadRow)
                .values(id=1, last_id=0, last_hash=GENESIS)
                .on_conflict_do_nothing(index_elements=["id"])
            )
            head = s.execute(
                select(AuditHeadRow).where(AuditHeadRow.id == 1).with_for_update()
            ).scalar_one()
            at = utcnow()
            new_id = head.last_id + 1
            h = _row_hash(head.last_hash, new_id, _normal(at), actor, tenant, action, details)
            s.add(
                AuditRow(
                    id=new_id,
                    at=at,
                    actor=actor,
                    tenant=tenant,
                    action=action,
                    details=details,
                    prev_hash=head.last_hash,
                    hash=h,
                )
            )
            head.last_id = new_id
            head.last_hash = h
        return AuditEntry(new_id, at, actor, tenant, action, details)

    def entries(self, *, tenant: str | None = None, limit: int = 100) -> list[AuditEntry]:
        """The newest entries, newest first."""
        with self.db.transaction() as s:
            q = select(AuditRow).order_by(AuditRow.id.desc()).limit(limit)
            if tenant:
                q = q.where(AuditRow.tenant == tenant)
            return [
                AuditEntry(r.id, r.at, r.actor, r.tenant, r.action, r.details)
                for r in s.execute(q).scalars()
            ]

    def verify(self) -> AuditReport:
        """Walk the chain; report every broken link, edited row, gap or missing tail."""
        problems: list[str] = []
        prev_hash, prev_id, count = GENESIS, 0, 0
        with self.db.transaction() as s:
            for r in s.execute(select(AuditRow).order_by(AuditRow.id)).scalars():
                count += 1
                if r.id != prev_id + 1:
                    problems.append(f"rows {prev_id + 1}..{r.id - 1} are missing")
                if r.prev_hash != prev_hash:
                    problems.append(f"row {r.id}: link to the previous row is broken")
                expected = _row_hash(
                    r.prev_hash, r.id, _normal(r.at), r.actor, r.tenant, r.action, r.details
                )
                if expected != r.hash:
                    problems.append(f"row {r.id}: content does not match its hash (edited)")
                prev_hash, prev_id = r.hash, r.id
            head = s.get(AuditHeadRow, 1)
        if head is not None and (head.last_id != prev_id or head.last_hash != prev_hash):
            problems.append(
                f"the log ends at row {prev_id} but {head.last_id} rows were written "
                "(rows deleted from the end, or the head was edited)"
            )
        if head is None and count:
            problems.append("the audit head is missing")
        return AuditReport(ok=not problems, rows=count, problems=problems)


def _normal(at: datetime) -> datetime:
    """A timestamp as naive UTC, as SQLite gives it back (PostgreSQL gives it aware)."""
    if at.tzinfo is not None:
        at = at.astimezone(UTC)
    return at.replace(tzinfo=None)
