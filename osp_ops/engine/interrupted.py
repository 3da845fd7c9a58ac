"""Interrupted operations: detected by their lease, resumed by their own command.

An operation recorded as ``running`` whose runner died (its lease is free, expired, or
held by a process of this host that is gone) is *interrupted*, never shown as running.
Rerunning the command that started it resumes it: a request of the same kind whose
parameters are those of an interrupted operation, except the ones a request computes
afresh (``GENERATED``: names with a timestamp), is that operation; one with other
parameters is refused, naming it. `op retry` refuses an operation that a later one of
its family superseded (a later restore succeeded: retrying an older one would silently
put the older data back).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from osp_ops.domain.errors import IllegalTransitionError, InterruptedOperationError
from osp_ops.engine.context import Context
from osp_ops.store.leases import holder_is_dead
from osp_ops.store.operations import OperationInfo

# Parameters each request computes anew; they do not make two requests differ.
GENERATED: Mapping[str, frozenset[str]] = {
    "restore": frozenset(
        {"target_database", "retired_database", "files_new", "files_retired", "was_suspended"}
    ),
    # The version reached so far moves while an upgrade runs; the spec says where to.
    "upgrade": frozenset({"from", "path"}),
}

CONVERGE = frozenset({"create", "apply", "upgrade"})
# A later succeeded operation of one of these kinds supersedes an earlier one.
FAMILY: Mapping[str, frozenset[str]] = {
    "create": CONVERGE,
    "apply": CONVERGE,
    "upgrade": CONVERGE,
    "restore": frozenset({"restore"}),
    "suspend": frozenset({"suspend", "resume", "delete"}),
    "resume": frozenset({"suspend", "resume", "delete"}),
}


def is_interrupted(ctx: Context, op: OperationInfo) -> bool:
    """A ``running`` operation whose runner holds no live lease of its tenant."""
    if op.status != "running":
        return False
    holder, _expires = ctx.leases.holder(op.tenant)  # None when free or expired
    if holder is None or not holder.startswith(f"op:{op.id}@"):
        return True
    return holder_is_dead(holder)


def status(ctx: Context, op: OperationInfo) -> str:
    """The status to show: ``interrupted`` for a running operation whose runner died."""
    return "interrupted" if is_interrupted(ctx, op) else op.status


def _same(kind: str, a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    """The parameters in which two requests of ``kind`` differ."""
    ignore = GENERATED.get(kind, frozenset())
    return sorted(k for k in {*a, *b} - ignore if a.get(k) != b.get(k))


def interrupted_of(ctx: Context, tenant: str, kind: str) -> OperationInfo | None:
    """The oldest interrupted operation of ``kind`` of the tenant."""
    for op in ctx.operations.pending_for(tenant):
        if op.kind == kind and is_interrupted(ctx, op):
            return op
    return None


def resumed(
    ctx: Context, tenant: str, kind: str, params: Mapping[str, Any]
) -> OperationInfo | None:
    """The interrupted operation this request resumes (None: there is none);
    InterruptedOperationError when one waits with other parameters."""
    op = interrupted_of(ctx, tenant, kind)
    if op is None:
        return None
    differ = _same(kind, op.params, params)
    if not differ:
        return op
    raise InterruptedOperationError(
        f"tenant {tenant!r} has an interrupted {kind} operation {op.id} with other "
        f"parameters ({', '.join(differ)})",
        hint=f"rerun the command that started it to resume it (`osp-ops op show {op.id}`), "
        f"or cancel it first: `osp-ops op cancel {op.id}`",
    )


def resume_params(ctx: Context, tenant: str, kind: str, fresh: dict[str, Any]) -> dict[str, Any]:
    """``fresh`` parameters, or those of the interrupted operation this request resumes
    (so the names it staged are reused)."""
    op = interrupted_of(ctx, tenant, kind)
    if op is None or _same(kind, {**op.params, "spec": None}, {**fresh, "spec": None}):
        return fresh
    return {k: v for k, v in op.params.items() if k != "spec"}


def superseded_by(ctx: Context, op: OperationInfo) -> OperationInfo | None:
    """A later operation of the family of ``op`` that succeeded, if any."""
    family = FAMILY.get(op.kind, frozenset({op.kind}))
    for later in ctx.operations.recent(tenant=op.tenant, limit=500):
        later_ok = later.kind in family and later.status == "succeeded"
        if later_ok and later.id != op.id and later.created_at > op.created_at:
            return later
    return None


def check_retry(ctx: Context, op: OperationInfo) -> None:
    """IllegalTransitionError when retrying ``op`` would undo what a later one did."""
    if op.status == "succeeded":
        raise IllegalTransitionError(f"operation {op.id} already succeeded")
    if op.status == "rolled-back":
        raise IllegalTransitionError(
            f"operation {op.id} ({op.kind}) failed and was rolled back",
            hint="run the command anew for a new attempt",
        )
    later = superseded_by(ctx, op)
    if later is not None:
        raise IllegalTransitionError(
            f"operation {op.id} ({op.kind}) was superseded by {later.kind} {later.id}, "
            "which succeeded after it: retrying it would undo that",
            hint=f"run the command anew for what you want now; `osp-ops op cancel {op.id}` "
            "closes it"
            if op.status in ("queued", "running")
            else "run the command anew for what you want now",
        )
