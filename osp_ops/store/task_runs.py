"""The record of every one-time upgrade task run: per tenant, with output, status, time.

A run's id is ``<operation>/<hop target>/<index of the task in the hop>``, so a resumed
upgrade finds the runs it made before (and reruns only what did not succeed).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from osp_ops.store.db import Database, utcnow
from osp_ops.store.tables import TaskRunRow


@dataclass(frozen=True)
class TaskRun:
    """One run of a one-time task."""

    id: str
    tenant: str
    operation_id: str
    hop_from: str
    hop_to: str
    task_version: str
    command: str
    rerunnable: bool
    status: str
    attempts: int
    output: str | None
    started_at: datetime
    finished_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        """Plain data for --json."""
        return {
            "operation": self.operation_id,
            "from": self.hop_from,
            "to": self.hop_to,
            "task_version": self.task_version,
            "command": self.command,
            "rerunnable": self.rerunnable,
            "status": self.status,
            "attempts": self.attempts,
            "output": self.output,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
        }


def _info(r: TaskRunRow) -> TaskRun:
    return TaskRun(
        r.id, r.tenant, r.operation_id, r.hop_from, r.hop_to, r.task_version, r.command,
        bool(r.rerunnable), r.status, r.attempts, r.output, r.started_at, r.finished_at,
    )  # fmt: skip


class TaskRuns:
    """The task_runs table."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, run_id: str) -> TaskRun | None:
        """One run, or None."""
        with self.db.transaction() as s:
            row = s.get(TaskRunRow, run_id)
            return _info(row) if row else None

    def start(
        self,
        run_id: str,
        *,
        tenant: str,
        operation_id: str,
        hop: tuple[str, str],
        task_version: str,
        command: str,
        rerunnable: bool,
    ) -> TaskRun:
        """Record that a run starts (a second start of the same run counts an attempt)."""
        with self.db.transaction() as s:
            row = s.get(TaskRunRow, run_id)
            if row is None:
                row = TaskRunRow(
                    id=run_id, tenant=tenant, operation_id=operation_id, hop_from=hop[0],
                    hop_to=hop[1], task_version=task_version, command=command,
                    rerunnable=int(rerunnable), status="running", attempts=1, output=None,
                    started_at=utcnow(), finished_at=None,
                )  # fmt: skip
                s.add(row)
            else:
                row.status, row.attempts, row.output = "running", row.attempts + 1, None
                row.started_at, row.finished_at = utcnow(), None
            s.flush()
            return _info(row)

    def finish(self, run_id: str, *, ok: bool, output: str) -> None:
        """Record how a run ended."""
        with self.db.transaction() as s:
            row = s.get(TaskRunRow, run_id)
            if row is None:
                raise KeyError(run_id)
            row.status = "succeeded" if ok else "failed"
            row.output = output
            row.finished_at = utcnow()

    def for_tenant(self, tenant: str, *, limit: int | None = None) -> list[TaskRun]:
        """The tenant's runs, newest first."""
        with self.db.transaction() as s:
            q = (
                select(TaskRunRow)
                .where(TaskRunRow.tenant == tenant)
                .order_by(TaskRunRow.started_at.desc(), TaskRunRow.id.desc())
            )
            if limit is not None:
                q = q.limit(limit)
            return [_info(r) for r in s.scalars(q).all()]
