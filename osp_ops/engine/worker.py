"""The worker: claims queued operations and runs them, one tenant at a time each."""

from __future__ import annotations

import logging
import time

from osp_ops.domain.errors import LeaseHeldError, OspOpsError
from osp_ops.engine import deletion  # noqa: F401  (registers the backup and delete steps)
from osp_ops.engine.context import Context
from osp_ops.engine.runner import run_operation
from osp_ops.store.leases import holder_id

log = logging.getLogger("osp_ops.worker")


def run_worker(
    ctx: Context, *, once: bool = False, poll: float = 2.0, max_operations: int | None = None
) -> int:
    """Claim and run operations until stopped (or the queue is empty with ``once``).

    Returns how many operations ran.
    """
    worker = holder_id("worker")
    ran = 0
    busy: dict[str, float] = {}  # tenants whose lease another process holds, until when
    while max_operations is None or ran < max_operations:
        now = time.monotonic()
        busy = {t: until for t, until in busy.items() if until > now}
        op_id = ctx.operations.claim_next(worker, exclude_tenants=list(busy))
        if op_id is None:
            if once:
                break
            time.sleep(poll)
            continue
        op = ctx.operations.get(op_id)
        try:
            run_operation(ctx, op_id)
            ran += 1
        except LeaseHeldError:
            ctx.operations.requeue(op_id)
            busy[op.tenant] = time.monotonic() + poll
        except OspOpsError as e:
            ran += 1
            log.warning("operation %s on %s failed: %s", op_id, op.tenant, e)
    return ran
