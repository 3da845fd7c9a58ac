"""Requests for operations: what the CLI, the web form and schedules call.

A request validates everything first (spec, catalog, fleet collisions, phase) and only
then records the tenant and a queued operation; bad input leaves nothing behind.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from osp_ops.domain.errors import (
    IllegalTransitionError,
    Problem,
    SpecError,
    TenantDeletedError,
)
from osp_ops.domain.phases import TRANSITIONS, Phase
from osp_ops.domain.spec import TenantSpec, dump_spec
from osp_ops.engine.context import Context
from osp_ops.engine.interrupted import resumed
from osp_ops.engine.kinds.rollback import refuse_after_failed_rollback
from osp_ops.engine.kinds.upgrade import hops, upgrade_steps
from osp_ops.store.operations import OperationInfo


def kind_for_converge(ctx: Context, slug: str) -> str:
    """``create`` for a new (or never provisioned) tenant, else ``apply``.

    An interrupted create or apply is finished first: a create killed after its
    ``mark-ready`` step leaves the tenant ready, and must be resumed, not followed
    by an apply while it stays ``running`` forever.
    """
    for op in ctx.operations.pending_for(slug):
        if op.kind in ("create", "apply"):
            return op.kind
    rec = ctx.tenants.get(slug)
    if rec is None or rec.phase in (Phase.requested, Phase.provisioning, Phase.deleted):
        return "create"
    if rec.phase is Phase.failed and rec.observed_version is None:
        return "create"
    return "apply"


def request(
    ctx: Context,
    kind: str,
    spec: TenantSpec,
    *,
    params: dict[str, Any] | None = None,
    requested_by: str | None = None,
    steps: Sequence[str] | None = None,
    reuse_deleted: bool = False,
) -> tuple[OperationInfo, bool]:
    """Validate and queue an operation of ``kind`` on ``spec``'s tenant.

    Returns (operation, created); an identical pending operation is returned instead of
    a new one. Raises before recording anything when the request is not allowed; a
    deleted tenant is only created again with ``reuse_deleted`` (TenantDeletedError).
    """
    reserved = ctx.settings.reserved_problems(spec.slug)
    if reserved:
        raise SpecError([Problem("slug", p) for p in reserved])
    ctx.specs.check_against_fleet(spec)
    rec = ctx.tenants.get(spec.slug)
    entry = ctx.kinds.entry_phase(kind)  # checked before anything is recorded
    pending = ctx.operations.pending_for(spec.slug)
    deleted = rec is not None and rec.phase is Phase.deleted
    if deleted and kind in ("create", "apply") and not pending and not reuse_deleted:
        raise TenantDeletedError(spec.slug)
    if rec is not None and entry is not None and not pending:
        current = rec.phase
        if current != entry and entry not in TRANSITIONS[current]:
            raise IllegalTransitionError(
                f"cannot {kind} tenant {spec.slug!r}: it is {current}"
                + (f" ({rec.reason})" if rec.reason else "")
            )
    if rec is None and kind not in ("create",):
        raise IllegalTransitionError(f"cannot {kind} tenant {spec.slug!r}: it was never created")
    all_params = {"spec": spec.model_dump(mode="json"), **(params or {})}
    interrupted = resumed(ctx, spec.slug, kind, all_params)  # refused when it differs
    if interrupted is not None:
        return interrupted, False
    ctx.tenants.upsert(
        slug=spec.slug,
        app=spec.app.name,
        desired_version=spec.app.version,
        platform=spec.platform.kind,
        spec_hash=hashlib.sha256(dump_spec(spec).encode()).hexdigest(),
    )
    op, created = ctx.operations.enqueue(
        tenant=spec.slug,
        kind=kind,
        steps=steps or ctx.kinds.kind(kind).steps,
        params=all_params,
        requested_by=requested_by or ctx.actor,
    )
    if created:
        ctx.audit.append(
            actor=requested_by or ctx.actor,
            action=f"{kind}.requested",
            tenant=spec.slug,
            details={"operation": op.id},
        )
    return op, created


def request_upgrade(
    ctx: Context, spec: TenantSpec, *, requested_by: str | None = None
) -> tuple[OperationInfo, bool]:
    """Queue an upgrade from the running version to the spec's, one catalog step at a time.

    A verified backup is taken first (``backup-before-upgrade``). CatalogError when the
    catalog allows no path (a downgrade or a skipped minor version).
    """
    rec = ctx.tenants.get(spec.slug)
    if rec is None or rec.observed_version is None:
        raise IllegalTransitionError(f"cannot upgrade {spec.slug!r}: it runs no version yet")
    refuse_after_failed_rollback(ctx, spec.slug)
    app = ctx.catalog.app(spec.app.name)
    path = app.upgrade_path(rec.observed_version, spec.app.version)
    with_tasks = frozenset(
        h.version for h in hops(app, rec.observed_version, tuple(path)) if h.tasks
    )
    steps = upgrade_steps(
        tuple(path), backup_first=ctx.kinds.has_step("backup-before-upgrade"), with_tasks=with_tasks
    )
    return request(
        ctx,
        "upgrade",
        spec,
        params={"from": rec.observed_version, "path": path},
        requested_by=requested_by,
        steps=steps,
    )


def request_converge(
    ctx: Context, spec: TenantSpec, *, requested_by: str | None = None, reuse_deleted: bool = False
) -> tuple[OperationInfo, bool]:
    """Create, apply or upgrade: whatever brings the tenant to its spec (a deleted tenant
    only with ``reuse_deleted``: TenantDeletedError otherwise)."""
    kind = kind_for_converge(ctx, spec.slug)
    rec = ctx.tenants.get(spec.slug)
    if kind == "apply" and rec is not None and rec.observed_version not in (None, spec.app.version):
        return request_upgrade(ctx, spec, requested_by=requested_by)
    return request(ctx, kind, spec, requested_by=requested_by, reuse_deleted=reuse_deleted)
