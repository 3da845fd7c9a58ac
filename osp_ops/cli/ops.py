"""`osp-ops op ...`: list, show, retry and cancel recorded operations."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from osp_ops.cli import lookup
from osp_ops.cli.common import context, queued, run_inline, slug_option, verbosity
from osp_ops.cli.lookup import require_tenant
from osp_ops.cli.output import console, print_json, table
from osp_ops.domain.display import plural, utc
from osp_ops.domain.error_text import one_line
from osp_ops.domain.errors import IllegalTransitionError
from osp_ops.engine import interrupted
from osp_ops.store.operations import OperationInfo

app = typer.Typer(help="Recorded operations.", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
OpId = Annotated[str, typer.Argument(help="Operation id, or a unique prefix of it.")]


@app.command("list")
def list_(
    c: typer.Context,
    tenant: Annotated[str | None, slug_option("--tenant", help_text="Only this tenant.")] = None,
    status: Annotated[
        str | None, typer.Option(help="queued, running, interrupted, succeeded, ...")
    ] = None,
    limit: Annotated[int, typer.Option(help="How many.")] = 30,
    json_: JsonOpt = False,
) -> None:
    """Newest operations first."""
    ctx = context(c)
    stored = "running" if status == "interrupted" else status
    ops = ctx.operations.recent(tenant=tenant, status=stored, limit=limit)
    if status in ("running", "interrupted"):  # what the lease says, not the record
        ops = [o for o in ops if interrupted.status(ctx, o) == status]
    if tenant is not None and not ops:
        require_tenant(ctx, tenant)
    if json_:
        print_json([{**o.to_json(), "status": interrupted.status(ctx, o)} for o in ops])
        return
    table(
        None,
        ["ID", "TENANT", "KIND", "STATUS", "STEPS", "TOOK", "BY", "CREATED (UTC)"],
        [
            [
                o.id,
                o.tenant,
                o.kind,
                interrupted.status(ctx, o),
                f"{sum(s.status == 'done' for s in o.steps)}/{len(o.steps)}",
                _took(o),
                o.requested_by,
                utc(o.created_at)[5:16],
            ]
            for o in ops
        ],
        count=("operation", "operations"),
        drop_first=("BY", "STEPS", "TOOK"),
    )


def _took(op: OperationInfo) -> str:
    """How long the operation ran: ``4.2 s``, ``3 min 5 s`` (``-`` before it started)."""
    if op.started_at is None:
        return "-"
    end = op.finished_at or op.started_at
    seconds = max(0.0, (end - op.started_at).total_seconds())
    if seconds < 60:
        return f"{seconds:.1f} s"
    return f"{int(seconds // 60)} min {int(seconds % 60)} s"


@app.command()
def show(
    c: typer.Context,
    op_id: OpId,
    json_: JsonOpt = False,
    events: Annotated[bool, typer.Option(help="Include the event log.")] = True,
) -> None:
    """One operation: its steps, attempts, timings, errors and events (times in UTC)."""
    ctx = context(c)
    op = lookup.operation(ctx, op_id)
    log = ctx.operations.events(op.id) if events else []
    if json_:
        print_json({**op.to_json(), "status": interrupted.status(ctx, op), "events": log})
        return
    console.print(
        f"[bold]{op.kind}[/] {op.tenant}  {interrupted.status(ctx, op)}  [dim]{op.id} by {op.requested_by}, "
        f"{utc(op.created_at)}, took {_took(op)}[/]"
    )
    if op.error:  # the full text; the table below shows one line of each error
        console.print(f"[red]error:[/] {escape(op.error)}", markup=True)
    table(
        None,
        ["#", "STEP", "STATUS", "ATTEMPTS", "MS", "OUTPUT/ERROR"],
        [
            [
                s.idx,
                s.name,
                s.status,
                s.attempts,
                f"{s.duration_ms:.0f}" if s.duration_ms is not None else "",
                one_line(s.error) if s.error else s.output,
            ]
            for s in op.steps
        ],
    )
    for s in op.steps:
        if s.error and s.error != op.error:
            console.print(f"[red]step {s.idx} {escape(s.name)}:[/] {escape(s.error)}")
    if log:
        shown = f"the last 40 of {len(log)}" if len(log) > 40 else plural(len(log), "event")
        console.print(f"events ({shown}, times UTC):", markup=False)
    for e in log[-40:]:
        host = f"[{e['host']}] " if e["host"] else ""
        console.print(
            f"  {e['at'][11:19]} {e['step'] or '':16} {e['status']:8} {host}{e['message']}",
            markup=False,
        )


@app.command()
def retry(
    c: typer.Context,
    op_id: OpId,
    async_: Annotated[bool, typer.Option("--async", help="Queue for a worker.")] = False,
    wait: Annotated[float, typer.Option(help="Seconds to wait for a busy tenant.")] = 0.0,
) -> None:
    """Run a failed, cancelled or interrupted operation again from its first unfinished step."""
    ctx = context(c)
    op = lookup.operation(ctx, op_id)
    interrupted.check_retry(ctx, op)
    if op.status in ("failed", "cancelled"):
        ctx.operations.requeue(op.id)
    ctx.audit.append(
        actor=ctx.actor, action="operation.retry", tenant=op.tenant, details={"operation": op.id}
    )
    op = ctx.operations.get(op.id)
    if async_:
        queued(op, False)
        return
    result = run_inline(ctx, op, created=False, wait=wait, verbose=verbosity(c))
    console.print(f"[green]{result.kind} {result.tenant}: {result.status}[/]")


@app.command()
def cancel(c: typer.Context, op_id: OpId) -> None:
    """Cancel a queued operation, or stop a running one after its current step."""
    ctx = context(c)
    op = lookup.operation(ctx, op_id)
    if op.status not in ("queued", "running"):
        raise IllegalTransitionError(f"operation {op.id} is {op.status}; nothing to cancel")
    ctx.operations.cancel(op.id)
    ctx.audit.append(
        actor=ctx.actor, action="operation.cancel", tenant=op.tenant, details={"operation": op.id}
    )
    console.print(f"cancelled {op.id}")
