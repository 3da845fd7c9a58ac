"""Runs an operation: lease, steps in order with progress persisted after each, retries.

A rerun of an interrupted operation (kill -9, reboot) skips the steps recorded as done
and starts at the first unfinished one; steps are idempotent, so a step cut off after
its effect but before its record is safe to run again. The operation is read again once
the lease is held, so a runner that waited for it never reruns what another finished.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from osp_ops import failpoints
from osp_ops.domain.errors import (
    LeaseHeldError,
    OperationCancelledError,
    OspOpsError,
    TemporaryError,
    recorded_message,
)
from osp_ops.domain.phases import Phase
from osp_ops.domain.spec import validate_spec
from osp_ops.engine import undo
from osp_ops.engine.context import Context
from osp_ops.engine.progress import Progress, SilentProgress
from osp_ops.engine.registry import Kind, StepResult, as_result
from osp_ops.engine.steps import StepContext
from osp_ops.platforms.base import Event
from osp_ops.store.leases import Lease, holder_id
from osp_ops.store.operations import FINISHED, OperationInfo

log = logging.getLogger("osp_ops.engine")

MAX_BACKOFF = 30.0


class _Heartbeat:
    """Renews a lease in the background; remembers if it was lost."""

    def __init__(self, ctx: Context, lease: Lease) -> None:
        self.ctx, self.lease = ctx, lease
        self.lost: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lease-heartbeat", daemon=True)

    def _run(self) -> None:
        ttl = self.ctx.settings.lease_ttl_seconds
        while not self._stop.wait(ttl / 3):
            try:
                self.lease = self.ctx.leases.renew(self.lease, ttl)
            except OspOpsError as e:
                self.lost = str(e)
                return

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def acquire_lease(ctx: Context, tenant: str, holder: str, *, wait: float) -> Lease:
    """Take the tenant's lease, polling up to ``wait`` seconds while another holds it."""
    deadline = time.monotonic() + wait
    while True:
        try:
            return ctx.leases.acquire(tenant, holder, ctx.settings.lease_ttl_seconds)
        except LeaseHeldError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(min(1.0, max(0.05, deadline - time.monotonic())))


def run_operation(
    ctx: Context, op_id: str, *, progress: Progress | None = None, wait: float = 0.0
) -> OperationInfo:
    """Run (or resume) an operation to its end; returns its final record.

    Raises the operation's error after recording it (LeaseHeldError without recording:
    the operation stays queued for whoever holds the lease or a later run).
    """
    progress = progress or SilentProgress()
    op = ctx.operations.get(op_id)
    if op.status in FINISHED:
        return op
    kind = ctx.kinds.kind(op.kind)
    holder = holder_id(f"op:{op.id}")
    lease = acquire_lease(ctx, op.tenant, holder, wait=wait)
    # While we waited, another runner may have run it: work from the state as it is now.
    op = ctx.operations.get(op_id)
    if op.status in FINISHED:
        ctx.leases.release(lease)
        return op
    try:
        with _Heartbeat(ctx, lease) as heartbeat:
            _run_steps(ctx, op, kind, holder, heartbeat, progress)
    except OspOpsError as e:
        _record_failure(ctx, op, _failure_phase(ctx, op.id, kind), e)
        raise
    except Exception as e:
        _record_failure(ctx, op, _failure_phase(ctx, op.id, kind), e)
        raise
    finally:
        ctx.leases.release(lease)
    done = ctx.operations.get(op.id)
    undo.raise_if_rolled_back(done)  # an undone operation did not do what was asked
    return done


def _failure_phase(ctx: Context, op_id: str, kind: Kind) -> Phase | None:
    """The kind's failure phase, unless only its gates ran (the tenant was not touched)."""
    if kind.failure_phase is None or not kind.gates:
        return kind.failure_phase
    steps = ctx.operations.get(op_id).steps
    if any(s.status != "pending" and s.name not in kind.gates for s in steps):
        return kind.failure_phase
    return None


def _record_failure(ctx: Context, op: OperationInfo, phase: Any, error: BaseException) -> None:
    cancelled = isinstance(error, OperationCancelledError)
    message = recorded_message(error)
    ctx.operations.finish(op.id, "cancelled" if cancelled else "failed", message)
    if phase is not None and not cancelled and ctx.tenants.get(op.tenant) is not None:
        ctx.tenants.set_phase(op.tenant, phase, f"{op.kind} failed: {message}", force=True)
    ctx.audit.append(
        actor=op.requested_by,
        action=f"{op.kind}.failed",
        tenant=op.tenant,
        details={"operation": op.id, "error": message},
    )
    log.error("operation failed", extra={"tenant": op.tenant, "operation": op.id, "error": message})


def _run_steps(
    ctx: Context,
    op: OperationInfo,
    kind: Kind,
    holder: str,
    heartbeat: _Heartbeat,
    progress: Progress,
) -> None:
    # A runner of this operation marked it running before (and died, maybe before its
    # first step), or some step already ran.
    ran_before = op.status == "running" and (op.worker or "").startswith(f"op:{op.id}@")
    resumed = ran_before or any(s.status != "pending" for s in op.steps)
    ctx.operations.mark_running(op.id, holder)
    ctx.audit.append(
        actor=op.requested_by,
        action=f"{op.kind}.{'resume' if resumed else 'start'}",
        tenant=op.tenant,
        details={"operation": op.id},
    )
    progress.started(op)
    spec = validate_spec(op.params["spec"], source=f"operation {op.id}", catalog=ctx.catalog)
    max_attempts = kind.retry.attempts(ctx.settings.step_max_attempts)
    base_delay = kind.retry.delay(ctx.settings.retry_base_delay)
    steps = list(op.steps)
    if kind.undo is not None:  # resumed past its point of no return: it undoes instead
        steps = undo.on_start(ctx, op, kind.undo, steps)
    undoing = kind.undo is not None and undo.started(kind.undo, steps)
    i = 0
    while i < len(steps):
        step, i = steps[i], i + 1
        if step.status in ("done", "skipped") or (
            undoing and kind.undo is not None and step.name not in kind.undo.steps
        ):
            progress.step(step.name, "skipped", detail=f"{step.status} before")
            continue
        if ctx.operations.is_cancelled(op.id):
            raise OperationCancelledError(f"operation {op.id} was cancelled")
        if heartbeat.lost:
            raise TemporaryError(f"stopped: {heartbeat.lost}")
        failpoints.hit(f"before-step:{step.name}")

        def report(event: Event, _step: str = step.name) -> None:
            ctx.operations.log(
                op.id, step=_step, status=event.status, message=event.message, host=event.host
            )
            progress.event(_step, event)

        arg = step.name.partition("@")[2]
        sc = StepContext(ctx=ctx, op=op, spec=spec, report=report, arg=arg or None)
        try:
            result, ms = _attempt(
                ctx, op, step.idx, step.name, sc, (max_attempts, base_delay), progress
            )
        except Exception as e:
            if kind.undo is None:
                raise
            if undoing:
                raise undo.undo_failed(ctx, sc, kind.undo, step.name, e) from e
            more = undo.on_failure(ctx, op, kind.undo, step, e)
            if more is None:
                raise
            steps, undoing = more, True
            continue
        failpoints.hit(f"after-step:{step.name}")
        ctx.operations.step_done(op.id, step.idx, ms, result.output, data=result.data)
        failpoints.hit(f"step-recorded:{step.name}")
        progress.step(step.name, "done", detail=result.output)
    if undoing and kind.undo is not None:
        undo.finish(ctx, op, kind.undo)
        return
    ctx.operations.finish(op.id, "succeeded")
    ctx.audit.append(
        actor=op.requested_by,
        action=f"{op.kind}.succeeded",
        tenant=op.tenant,
        details={"operation": op.id},
    )


def _attempt(
    ctx: Context,
    op: OperationInfo,
    idx: int,
    name: str,
    sc: StepContext,
    retry: tuple[int, float],
    progress: Progress,
) -> tuple[StepResult, float]:
    fn = ctx.kinds.step(name)
    max_attempts, base_delay = retry
    while True:
        attempt = ctx.operations.step_started(op.id, idx)
        progress.step(name, "running", attempt=attempt)
        started = time.perf_counter()
        try:
            result = as_result(fn(sc))
            return result, (time.perf_counter() - started) * 1000
        except TemporaryError as e:
            final = attempt >= max_attempts
            ctx.operations.step_failed(op.id, idx, str(e), final=final)
            if final:
                progress.step(name, "failed", attempt=attempt, detail=str(e))
                raise
            delay = (
                min(MAX_BACKOFF, max(e.delay, base_delay) * 2 ** (attempt - 1))
                if base_delay
                else 0.0
            )
            ctx.operations.log(
                op.id,
                step=name,
                status="retrying",
                message=f"attempt {attempt} failed: {e}; retrying in {delay:.1f}s",
            )
            progress.step(name, "retrying", attempt=attempt, detail=str(e))
            time.sleep(delay)
        except Exception as e:
            message = recorded_message(e)
            ctx.operations.step_failed(op.id, idx, message, final=True)
            progress.step(name, "failed", attempt=attempt, detail=message)
            raise
