"""The prune kind: the spec's retention for a tenant, the purge rule for a deleted one
(``engine/deletion.py``), and the databases and files restores retired long enough ago."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from osp_ops.backups import prune
from osp_ops.domain.errors import ConfigError
from osp_ops.domain.phases import Phase
from osp_ops.engine.backup_access import store_for
from osp_ops.engine.deletion import purge
from osp_ops.engine.kinds.restore import drop_retired
from osp_ops.engine.registry import Kind, Registry
from osp_ops.engine.steps import StepContext, audit
from osp_ops.platforms.base import Event
from osp_ops.store.backups import Backups


def prune_backups(sc: StepContext) -> str:
    """Apply the spec's retention; audit every deletion; never the newest verified."""
    ctx, spec = sc.ctx, sc.spec
    dry_run = bool(sc.params.get("dry_run", False))
    cache = Backups(ctx.db)
    result = prune(
        store_for(ctx),
        spec.slug,
        spec.backup.retention,
        datetime.now(UTC),
        verified=cache.verified_ids(spec.slug),
        completed=cache.completed_ids(spec.slug),
        tz=ZoneInfo(spec.time_zone),
        dry_run=dry_run,
    )
    r = spec.backup.retention
    rule = f"daily {r.daily}, weekly {r.weekly}, monthly {r.monthly}, yearly {r.yearly}"
    if not dry_run:
        for backup_id in result.deleted:
            audit(
                sc, "backup.pruned", {"backup": backup_id, "reason": f"outside retention ({rule})"}
            )
        for backup_id in result.incomplete_deleted:
            audit(
                sc, "backup.pruned", {"backup": backup_id, "reason": "incomplete, older than 6 h"}
            )
        cache.forget([*result.deleted, *result.incomplete_deleted])
    for backup_id, reasons in sorted(result.kept.items()):
        sc.report(Event(f"keep {backup_id}: {', '.join(reasons)}", host=spec.slug, status="info"))
    for backup_id in (*result.deleted, *result.incomplete_deleted):
        word = "would delete" if dry_run else "deleted"
        sc.report(Event(f"{word} {backup_id}", host=spec.slug, status="changed"))
    verb = "would delete" if dry_run else "deleted"
    grace = datetime.now(UTC) - timedelta(days=ctx.settings.restore_grace_days)
    retired: list[str] = []
    # Without access to the tenant's data here (e.g. no admin DSN), backups only.
    if not dry_run:
        with contextlib.suppress(ConfigError):
            retired = drop_retired(ctx, spec, older_than=grace)
    for name in retired:
        sc.report(
            Event(
                f"dropped {name} (retired by a restore before {grace:%Y-%m-%d %H:%M})",
                host=spec.slug,
                status="changed",
            )
        )
    return (
        f"kept {len(result.kept)}, {verb} {len(result.deleted) + len(result.incomplete_deleted)}"
        + (f", damaged (kept) {', '.join(result.damaged)}" if result.damaged else "")
        + (f", dropped retired {', '.join(retired)}" if retired else "")
    )


def prune_or_purge(sc: StepContext) -> str:
    """The spec's retention for a tenant; the purge rule for a deleted one."""
    rec = sc.ctx.tenants.get(sc.spec.slug)
    if rec is not None and rec.phase is Phase.deleted:
        return purge(sc, rec, dry_run=bool(sc.params.get("dry_run", False)))
    return prune_backups(sc)


PRUNE = Kind("prune", ("prune",), failure_phase=None)


def register(registry: Registry[Any]) -> None:
    """Add the prune kind."""
    registry.register(PRUNE, {"prune": prune_or_purge})
