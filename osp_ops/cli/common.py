"""Helpers the command groups share: getting the context, running operations inline."""

from __future__ import annotations

import typer

from osp_ops.cli.output import ConsoleProgress, console
from osp_ops.domain.errors import OspOpsError
from osp_ops.engine.context import Context
from osp_ops.engine.runner import run_operation
from osp_ops.settings import Settings
from osp_ops.store.operations import OperationInfo


def context(ctx: typer.Context) -> Context:
    """The shared engine context of this invocation."""
    state = ctx.find_root().obj
    return state.context()  # type: ignore[no-any-return]


def settings(ctx: typer.Context) -> tuple[Settings, dict[str, str]]:
    """Settings and their sources."""
    state = ctx.find_root().obj
    return state.settings()  # type: ignore[no-any-return]


def run_inline(
    c: Context, op: OperationInfo, *, created: bool, wait: float, verbose: bool = False
) -> OperationInfo:
    """Run a queued operation here with live progress; raises its error."""
    if not created:
        console.print(f"[dim]resuming pending operation {op.id}[/]")
    progress = ConsoleProgress(verbose=verbose)
    try:
        result = run_operation(c, op.id, progress=progress, wait=wait)
    except OspOpsError:
        progress.close()
        raise
    progress.close()
    return result


def queued(op: OperationInfo, created: bool) -> None:
    """Tell the user an operation was queued for the worker."""
    word = "queued" if created else "already pending"
    console.print(
        f"{op.kind} {op.tenant}: {word} as operation {op.id} "
        "(a worker runs it: `osp-ops worker`; follow it with `osp-ops op show ID`)"
    )
