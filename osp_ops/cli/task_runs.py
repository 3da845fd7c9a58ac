"""`osp-ops upgrade history SLUG`: every one-time upgrade task run of a tenant, newest first.

Each run: when it started (UTC), the operation, the hop, the task's command and release,
its status (running, succeeded, failed), attempts and the last line of its output
(all of it with --json). `tenant show` shows the most recent ones.
"""

from __future__ import annotations

from typing import Any

from osp_ops.cli.output import table
from osp_ops.domain.display import utc
from osp_ops.domain.error_text import one_line
from osp_ops.engine.context import Context
from osp_ops.store.task_runs import TaskRun, TaskRuns


def task_runs(ctx: Context, slug: str, *, limit: int | None = None) -> list[TaskRun]:
    """The tenant's task runs, newest first."""
    return TaskRuns(ctx.db).for_tenant(slug, limit=limit)


def _last_line(text: str | None) -> str:
    lines = [line for line in (text or "").splitlines() if line.strip()]
    return one_line(lines[-1]) if lines else ""


def print_task_runs(title: str | None, runs: list[TaskRun]) -> None:
    """The runs as a table (nothing when there are none and a title is given)."""
    if not runs and title is not None:
        return
    rows: list[list[Any]] = [
        [
            utc(r.started_at).removesuffix(" UTC"),
            r.operation_id,
            f"{r.hop_from} → {r.hop_to}",
            f"{r.command} [{r.task_version}]",
            r.status + ("" if r.attempts == 1 else f" ({r.attempts} attempts)"),
            _last_line(r.output),
        ]
        for r in runs
    ]
    table(
        title,
        ["STARTED (UTC)", "OPERATION", "HOP", "TASK", "STATUS", "OUTPUT"],
        rows,
        count=("task run", "task runs"),
    )
