"""Operations and their steps in the state DB: enqueue (deduplicated), claim, progress."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from osp_ops.domain.errors import NotFoundError
from osp_ops.domain.redaction import redact
from osp_ops.store.db import Database, utcnow
from osp_ops.store.tables import OperationLogRow, OperationRow, StepRow

PENDING = ("queued", "running")
FINISHED = ("succeeded", "failed", "cancelled", "rolled-back")


@dataclass(frozen=True)
class StepInfo:
    """A step's recorded progress."""

    idx: int
    name: str
    status: str  # pending | running | done | failed | skipped (an undo came first)
    attempts: int
    duration_ms: float | None
    error: str | None
    output: str | None
    # What the step returned for later steps to read (JSON), beside its text.
    data: dict[str, Any] | None = None


@dataclass(frozen=True)
class OperationInfo:
    """An operation as recorded."""

    id: str
    tenant: str
    kind: str
    status: str
    params: dict[str, Any]
    requested_by: str
    worker: str | None
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    steps: tuple[StepInfo, ...]

    def to_json(self) -> dict[str, Any]:
        """Plain data for --json output."""
        return {
            "id": self.id,
            "tenant": self.tenant,
            "kind": self.kind,
            "status": self.status,
            "params": self.params,
            "requested_by": self.requested_by,
            "worker": self.worker,
            "error": self.error,
            "created_at": _iso(self.created_at),
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "steps": [s.__dict__ for s in self.steps],
        }


def _json_data(data: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A step's data as plain JSON (a copy: what is stored is what a later step reads)."""
    if data is None:
        return None
    plain: dict[str, Any] = json.loads(json.dumps(dict(data)))
    return plain


def _iso(d: datetime | None) -> str | None:
    return d.isoformat() if d else None


def dedup_key(kind: str, tenant: str, params: dict[str, Any]) -> str:
    """Identical pending operations share this key."""
    body = json.dumps({"k": kind, "t": tenant, "p": params}, sort_keys=True)
    return hashlib.sha256(body.encode()).hexdigest()


def new_operation_id() -> str:
    """A time-sortable operation id."""
    return utcnow().strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]


class Operations:
    """Operation records."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def enqueue(
        self,
        *,
        tenant: str,
        kind: str,
        steps: Sequence[str],
        params: dict[str, Any],
        requested_by: str,
    ) -> tuple[OperationInfo, bool]:
        """Record a queued operation, or return the identical pending one.

        Returns (operation, created).
        """
        key = dedup_key(kind, tenant, params)
        with self.db.transaction() as s:
            if self.db.is_postgresql:
                # FOR UPDATE locks no row when there is none yet: two identical requests
                # would both insert. A transaction lock on the key serializes them
                # (SQLite's BEGIN IMMEDIATE already does).
                s.execute(select(func.pg_advisory_xact_lock(int(key[:15], 16))))
            existing = (
                s.execute(
                    select(OperationRow)
                    .where(OperationRow.dedup_key == key, OperationRow.status.in_(PENDING))
                    .with_for_update()
                )
                .scalars()
                .first()
            )
            if existing is not None:
                op_id, created = existing.id, False
            else:
                op_id, created = new_operation_id(), True
                s.add(
                    OperationRow(
                        id=op_id,
                        tenant=tenant,
                        kind=kind,
                        status="queued",
                        params=params,
                        dedup_key=key,
                        requested_by=requested_by,
                        created_at=utcnow(),
                    )
                )
                s.flush()
                for i, name in enumerate(steps):
                    s.add(
                        StepRow(operation_id=op_id, idx=i, name=name, status="pending", attempts=0)
                    )
        return self.get(op_id), created

    def get(self, op_id: str) -> OperationInfo:
        """One operation with its steps; NotFoundError names the id."""
        with self.db.transaction() as s:
            row = s.get(OperationRow, op_id)
            if row is None:
                matches = (
                    s.execute(
                        select(OperationRow).where(OperationRow.id.startswith(op_id)).limit(2)
                    )
                    .scalars()
                    .all()
                )
                if len(matches) != 1:
                    raise NotFoundError(f"no operation {op_id!r}")
                row = matches[0]
            steps = s.execute(
                select(StepRow).where(StepRow.operation_id == row.id).order_by(StepRow.idx)
            ).scalars()
            return OperationInfo(
                row.id,
                row.tenant,
                row.kind,
                row.status,
                row.params,
                row.requested_by,
                row.worker,
                row.error,
                row.created_at,
                row.started_at,
                row.finished_at,
                tuple(
                    StepInfo(
                        x.idx,
                        x.name,
                        x.status,
                        x.attempts,
                        x.duration_ms,
                        x.error,
                        x.output,
                        x.data,
                    )
                    for x in steps
                ),
            )

    def recent(
        self,
        *,
        tenant: str | None = None,
        status: str | None = None,
        kind: str | None = None,
        limit: int = 50,
    ) -> list[OperationInfo]:
        """Newest operations first."""
        with self.db.transaction() as s:
            q = select(OperationRow.id).order_by(OperationRow.created_at.desc()).limit(limit)
            if tenant:
                q = q.where(OperationRow.tenant == tenant)
            if status:
                q = q.where(OperationRow.status == status)
            if kind:
                q = q.where(OperationRow.kind == kind)
            ids = list(s.execute(q).scalars())
        return [self.get(i) for i in ids]

    def pending_for(self, tenant: str) -> list[OperationInfo]:
        """Queued or running operations of a tenant, oldest first."""
        with self.db.transaction() as s:
            ids = list(
                s.execute(
                    select(OperationRow.id)
                    .where(OperationRow.tenant == tenant, OperationRow.status.in_(PENDING))
                    .order_by(OperationRow.created_at)
                ).scalars()
            )
        return [self.get(i) for i in ids]

    def claim_next(self, worker: str, *, exclude_tenants: Sequence[str] = ()) -> str | None:
        """Claim the oldest queued operation for ``worker``; its id, or None.

        PostgreSQL: ``FOR UPDATE SKIP LOCKED``; SQLite: the transaction holds the write
        lock (BEGIN IMMEDIATE) and the UPDATE re-checks the status.
        """
        with self.db.transaction() as s:
            q = (
                select(OperationRow.id)
                .where(OperationRow.status == "queued")
                .order_by(OperationRow.created_at)
                .limit(1)
            )
            if exclude_tenants:
                q = q.where(OperationRow.tenant.not_in(exclude_tenants))
            if self.db.is_postgresql:
                q = q.with_for_update(skip_locked=True)
            op_id = s.execute(q).scalar_one_or_none()
            if op_id is None:
                return None
            result = s.execute(
                update(OperationRow)
                .where(OperationRow.id == op_id, OperationRow.status == "queued")
                .values(status="running", worker=worker, started_at=utcnow())
            )
            return op_id if result.rowcount == 1 else None  # type: ignore[attr-defined]

    def mark_running(self, op_id: str, worker: str) -> None:
        """The operation starts (or resumes) under ``worker``."""
        with self.db.transaction() as s:
            row = s.get(OperationRow, op_id)
            assert row is not None
            row.status, row.worker, row.error = "running", worker, None
            row.started_at = row.started_at or utcnow()

    def finish(self, op_id: str, status: str, error: str | None = None) -> None:
        """Record the outcome: succeeded, failed, cancelled or rolled-back."""
        with self.db.transaction() as s:
            row = s.get(OperationRow, op_id)
            assert row is not None
            row.status, row.error, row.finished_at = status, redact(error or "") or None, utcnow()

    def requeue(self, op_id: str) -> None:
        """Put a failed or cancelled operation back in the queue; failed steps reset,
        except one the operation went past (an undo followed it: it stays failed)."""
        with self.db.transaction() as s:
            row = s.get(OperationRow, op_id)
            assert row is not None
            row.status, row.error, row.finished_at, row.worker = "queued", None, None, None
            steps = self._step_rows(s, op_id)
            for i, step in enumerate(steps):
                went_past = any(later.status != "pending" for later in steps[i + 1 :])
                if step.status in ("failed", "running") and not went_past:
                    step.status, step.attempts, step.error = "pending", 0, None

    @staticmethod
    def _step_rows(s: Session, op_id: str) -> list[StepRow]:
        query = select(StepRow).where(StepRow.operation_id == op_id).order_by(StepRow.idx)
        return list(s.execute(query).scalars())

    def begin_undo(self, op_id: str, *, blamed: str, error: str, steps: Sequence[str]) -> None:
        """Start undoing (once): ``blamed`` is failed (``error`` unless it recorded one),
        the steps that did not run are skipped, ``steps`` are appended, pending."""
        with self.db.transaction() as s:
            rows = self._step_rows(s, op_id)
            if any(r.name in steps for r in rows):
                return
            for r in rows:
                if r.name == blamed:
                    r.status, r.error = "failed", r.error or redact(error)
                elif r.status == "pending":
                    r.status = "skipped"
            for i, name in enumerate(steps, start=len(rows)):
                s.add(StepRow(operation_id=op_id, idx=i, name=name, status="pending", attempts=0))

    def cancel(self, op_id: str) -> None:
        """Cancel a queued operation or flag a running one (it stops after its step)."""
        self.finish(op_id, "cancelled", "cancelled by an operator")

    def step_started(self, op_id: str, idx: int) -> int:
        """Mark a step running; returns its attempt number."""
        with self.db.transaction() as s:
            row = s.get(StepRow, (op_id, idx))
            assert row is not None
            row.status, row.attempts, row.started_at = "running", row.attempts + 1, utcnow()
            return row.attempts

    def step_done(
        self,
        op_id: str,
        idx: int,
        duration_ms: float,
        output: str | None,
        *,
        data: Mapping[str, Any] | None = None,
    ) -> None:
        """Persist a finished step, its text and its JSON ``data``: a rerun skips it."""
        with self.db.transaction() as s:
            row = s.get(StepRow, (op_id, idx))
            assert row is not None
            row.status, row.finished_at, row.duration_ms, row.output, row.error = (
                "done",
                utcnow(),
                duration_ms,
                redact(output) if output else output,
                None,
            )
            row.data = _json_data(data)

    def step_failed(self, op_id: str, idx: int, error: str, *, final: bool) -> None:
        """Record a failed attempt; ``final`` when no retry follows."""
        with self.db.transaction() as s:
            row = s.get(StepRow, (op_id, idx))
            assert row is not None
            row.error = redact(error)
            row.status = "failed" if final else "running"

    def log(
        self, op_id: str, *, step: str | None, status: str, message: str, host: str | None = None
    ) -> None:
        """Append an event to the operation's log."""
        with self.db.transaction() as s:
            s.add(
                OperationLogRow(
                    operation_id=op_id,
                    at=utcnow(),
                    step=step,
                    host=host,
                    status=status,
                    message=redact(message),
                )
            )

    def ids(self, *, prefix: str = "", tenant: str | None = None) -> list[str]:
        """Operation ids starting with ``prefix`` (every id when empty), oldest first."""
        query = select(OperationRow.id).where(OperationRow.id.startswith(prefix))
        if tenant is not None:
            query = query.where(OperationRow.tenant == tenant)
        with self.db.transaction() as s:
            return list(s.execute(query.order_by(OperationRow.id)).scalars())

    def events(self, op_id: str, limit: int = 500) -> list[dict[str, Any]]:
        """The operation's log, oldest first."""
        with self.db.transaction() as s:
            rows = s.execute(
                select(OperationLogRow)
                .where(OperationLogRow.operation_id == op_id)
                .order_by(OperationLogRow.id)
                .limit(limit)
            ).scalars()
            return [
                {
                    "at": r.at.isoformat(),
                    "step": r.step,
                    "host": r.host,
                    "status": r.status,
                    "message": r.message,
                }
                for r in rows
            ]

    def is_cancelled(self, op_id: str) -> bool:
        """True once an operator cancelled the operation."""
        with self.db.transaction() as s:
            row = s.get(OperationRow, op_id)
            return row is not None and row.status == "cancelled"
