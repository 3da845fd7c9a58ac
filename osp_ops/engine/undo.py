"""Undoing a kind that failed past its gates (an upgrade's rollback): the runner's part.

A kind with ``undo`` (``registry.Undo``) is never left half done. When one of its steps
fails for good, or when it resumes after its runner died (or is retried) and
``Undo.blame`` names a step (it went past its point of no return), the runner records
that step as failed, marks the steps that did not run ``skipped``, appends the undo
steps and runs them (``Operations.begin_undo``). The operation then ends
``rolled-back`` (``run_operation`` raises RolledBackError, naming what failed), or
``failed`` when an undo step fails; a retry (`op retry`, or the kind's own command)
runs the undo steps from there on, never the failed step again.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from osp_ops.domain.error_text import one_line
from osp_ops.domain.errors import (
    OspOpsError,
    PermanentError,
    RolledBackError,
    recorded_message,
)
from osp_ops.engine.context import Context
from osp_ops.engine.registry import Undo
from osp_ops.engine.steps import StepContext
from osp_ops.store.operations import OperationInfo, StepInfo

log = logging.getLogger("osp_ops.engine")

CUT_OFF = "cut off: its runner died while it ran"


def started(undo: Undo, steps: Sequence[StepInfo]) -> bool:
    """Whether the operation's undo has begun (its steps are recorded)."""
    return any(s.name in undo.steps for s in steps)


def _begin(ctx: Context, op: OperationInfo, undo: Undo, blamed: str, error: str) -> list[StepInfo]:
    ctx.operations.begin_undo(op.id, blamed=blamed, error=error, steps=undo.steps)
    ctx.operations.log(
        op.id, step=blamed, status="undoing", message=f"{blamed} failed: {one_line(error)}"
    )
    ctx.audit.append(
        actor=op.requested_by,
        action=f"{op.kind}.undo",
        tenant=op.tenant,
        details={"operation": op.id, "failed_step": blamed, "error": one_line(error)},
    )
    log.warning("undoing", extra={"tenant": op.tenant, "operation": op.id, "failed_step": blamed})
    return list(ctx.operations.get(op.id).steps)


def on_start(
    ctx: Context, op: OperationInfo, undo: Undo, steps: Sequence[StepInfo]
) -> list[StepInfo]:
    """The steps to run: the undo begins first when the operation resumes past its point
    of no return (``Undo.blame`` names the step cut off, or the next one)."""
    if started(undo, steps):
        return list(steps)
    blamed = undo.blame([(s.name, s.status) for s in steps])
    if blamed is None:
        return list(steps)
    step = next(s for s in steps if s.name == blamed)
    if step.status == "failed" and step.error:
        error = step.error
    elif step.status == "running":
        error = CUT_OFF
    else:
        error = "not started: the runner died before it; the upgrade does not go on"
    return _begin(ctx, op, undo, blamed, error)


def on_failure(
    ctx: Context, op: OperationInfo, undo: Undo, step: StepInfo, error: BaseException
) -> list[StepInfo] | None:
    """The steps to run after ``step`` failed for good: with the undo steps appended, or
    None when the failure needs no undo (a gate, or nothing touched yet)."""
    current = ctx.operations.get(op.id).steps
    if undo.blame([(s.name, s.status) for s in current]) != step.name:
        return None
    return _begin(ctx, op, undo, step.name, recorded_message(error))


def _cause(op: OperationInfo, undo: Undo) -> str:
    """``<step> failed: <error>`` of the step the undo is for."""
    for s in op.steps:
        if s.status == "failed" and s.name not in undo.steps:
            return f"{s.name} failed: {one_line(s.error)}"
    return "a step failed"


def undo_failed(
    ctx: Context, sc: StepContext, undo: Undo, step: str, error: BaseException
) -> OspOpsError:
    """The error an operation ends with when an undo step failed (what failed first,
    and how to retry the undo), after the kind's ``contain`` step ran as best it could."""
    op = sc.op
    if undo.contain is not None and step != undo.contain:
        try:
            ctx.kinds.step(undo.contain)(sc)
        except Exception as e:  # the failure to report is the undo step's
            log.error(
                "containment failed",
                extra={"tenant": op.tenant, "operation": op.id, "error": str(e)},
            )
    cause = _cause(ctx.operations.get(op.id), undo)
    message = recorded_message(error)
    return PermanentError(
        f"{op.kind} of {op.tenant} failed and its rollback failed too, at {step}: "
        f"{message} (the {op.kind} failed first: {cause})",
        hint=undo.hint.format(tenant=op.tenant, operation=op.id),
    )


def finish(ctx: Context, op: OperationInfo, undo: Undo) -> None:
    """Record the operation ``rolled-back``, its error saying what failed."""
    cause = _cause(ctx.operations.get(op.id), undo)
    ctx.operations.finish(op.id, "rolled-back", cause)
    ctx.audit.append(
        actor=op.requested_by,
        action=f"{op.kind}.rolled-back",
        tenant=op.tenant,
        details={"operation": op.id, "error": cause},
    )
    log.warning("rolled back", extra={"tenant": op.tenant, "operation": op.id, "error": cause})


def raise_if_rolled_back(op: OperationInfo) -> None:
    """RolledBackError when ``op`` ended ``rolled-back``: it did not do what was asked."""
    if op.status == "rolled-back":
        raise RolledBackError(
            f"{op.kind} of {op.tenant} was rolled back: {op.error}",
            hint=f"what failed and the rollback: osp-ops op show {op.id}",
        )
