"""Helpers the command groups share: getting the context, running operations inline."""

from __future__ import annotations

from typing import Any

import typer
from pydantic import TypeAdapter, ValidationError

from osp_ops.cli.output import ConsoleProgress, console
from osp_ops.domain.errors import OspOpsError, Problem, SpecError
from osp_ops.domain.spec import Slug
from osp_ops.engine.context import Context
from osp_ops.engine.runner import run_operation
from osp_ops.settings import Settings
from osp_ops.store.operations import OperationInfo


def context(ctx: typer.Context) -> Context:
    """The shared engine context of this invocation."""
    state = ctx.find_root().obj
    return state.context()  # type: ignore[no-any-return]


def verbosity(ctx: typer.Context, local: int = 0) -> int:
    """How many ``-v``: the command's own or the global option's, whichever is more."""
    return max(local, int(getattr(ctx.find_root().obj, "verbose", 0)))


def settings(ctx: typer.Context) -> tuple[Settings, dict[str, str]]:
    """Settings and their sources."""
    state = ctx.find_root().obj
    return state.settings()  # type: ignore[no-any-return]


_SLUG: TypeAdapter[str] = TypeAdapter(Slug)


def check_slug(c: typer.Context, value: str | None, *, field: str = "slug") -> str | None:
    """A slug argument checked as spec validation checks it, reserved names included,
    before anything touches the state DB (SpecError naming the argument)."""
    if value is None or c.resilient_parsing:
        return value
    try:
        _SLUG.validate_python(value)
    except ValidationError as e:
        message = e.errors()[0]["msg"].removeprefix("Value error, ")
        raise SpecError([Problem(field, message)], subject="argument") from None
    reserved = settings(c)[0].reserved_problems(value)
    if reserved:
        raise SpecError([Problem(field, p) for p in reserved], subject="argument")
    return value


def _slug_callback(c: typer.Context, param: typer.CallbackParam, value: str | None) -> str | None:
    name = param.name or "slug"
    field = f"--{name.replace('_', '-')}" if param.param_type_name == "option" else name
    return check_slug(c, value, field=field)


def slug_argument(help_text: str = "Tenant slug.") -> Any:
    """``typer.Argument`` of a tenant slug, validated before the command runs."""
    return typer.Argument(help=help_text, callback=_slug_callback)


def slug_option(*names: str, help_text: str) -> Any:
    """``typer.Option`` naming a tenant slug (``--to``), validated like ``slug_argument``."""
    return typer.Option(*names, help=help_text, callback=_slug_callback)


def run_inline(
    c: Context, op: OperationInfo, *, created: bool, wait: float, verbose: int = 0
) -> OperationInfo:
    """Run a queued operation here with live progress (platform tasks from ``verbose`` 1,
    skipped ones from 2); raises its error."""
    if not created:
        console.print(f"[dim]resuming pending operation {op.id}[/]")
    progress = ConsoleProgress(verbose=verbose)
    try:
        result = run_operation(c, op.id, progress=progress, wait=wait)
    except OspOpsError as e:
        progress.close()
        if e.hint is None:  # the Error line is one line of it; the record has it all
            e.hint = f"the full text: osp-ops op show {op.id}"
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
