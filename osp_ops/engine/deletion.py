"""Delete that can be undone until it is purged.

`tenant delete` takes a final backup first (``final-backup``; skipped only with
``--no-final-backup --reason``, which is audited), removes the app, its database, files,
app secrets and TLS certificate (``forget-tls``), and keeps the tenant's backup key and
every backup. The tenant is then ``deleted`` with the date its backups expire
(``deleted_backup_days`` after the delete, ``domain/deletion.py``): until then `backup
restore SLUG --to NEW` restores any of them; after it, the scheduled `backup prune`
destroys the backups and the key (``prune_or_purge``), each deletion audited.

The steps of the ``delete`` kind are in ``engine/kinds/lifecycle.py`` (``final-backup``,
``forget-tls`` included); ``purge`` is the ``prune`` kind's rule for a deleted tenant
(``engine/kinds/prune.py``).
"""

from __future__ import annotations

from datetime import UTC, datetime

from osp_ops.backups import list_backups
from osp_ops.backups.catalog import delete_backup
from osp_ops.domain import deletion
from osp_ops.domain.errors import IllegalTransitionError
from osp_ops.domain.phases import Phase
from osp_ops.domain.spec import TenantSpec
from osp_ops.engine.backup_access import IDENTITY_SECRET, store_for
from osp_ops.engine.context import Context
from osp_ops.engine.steps import StepContext, audit
from osp_ops.engine.verification import completed_ids
from osp_ops.platforms.base import Event
from osp_ops.store.backups import Backups
from osp_ops.store.tenants import TenantRecord

NO_FINAL_BACKUP_HINT = (
    "`osp-ops tenant delete SLUG --no-final-backup --reason TEXT` deletes without one"
)


def delete_params(*, final_backup: bool, reason: str | None) -> dict[str, object]:
    """The parameters of a delete request (the reason is audited when no backup is taken)."""
    if final_backup:
        return {}
    return {"final_backup": False, "no_final_backup_reason": reason}


def backups_expire_at(ctx: Context, rec: TenantRecord) -> datetime:
    """When a deleted tenant's backups expire: the date its delete recorded (tenants
    deleted before it was recorded: the last change of the record plus the setting)."""
    at = deletion.parse_expiry(rec.reason)
    if at is not None:
        return at
    updated = rec.updated_at if rec.updated_at.tzinfo else rec.updated_at.replace(tzinfo=UTC)
    return deletion.expiry(updated, ctx.settings.deleted_backup_days)


def purge(sc: StepContext, rec: TenantRecord, *, dry_run: bool) -> str:
    """A deleted tenant's prune: nothing before its backups expire; after, every backup
    and the backup key are destroyed (each audited)."""
    ctx, slug = sc.ctx, sc.spec.slug
    if deletion.is_purged(rec.reason):
        return "deleted tenant, purged already: nothing left"
    expires = backups_expire_at(ctx, rec)
    store = store_for(ctx)
    infos = list_backups(store, slug, completed=completed_ids(ctx, slug))
    if datetime.now(UTC) < expires:
        return (
            f"deleted tenant: {len(infos)} backups and their key kept until "
            f"{expires:%Y-%m-%d %H:%M} UTC (nothing pruned)"
        )
    if dry_run:
        return f"deleted tenant expired: would destroy {len(infos)} backups and the backup key"
    for info in infos:
        delete_backup(store, info)
        audit(sc, "backup.purged", {"backup": info.backup_id, "reason": "tenant deleted"})
        sc.report(Event(f"destroyed {info.backup_id}", host=slug, status="changed"))
    Backups(ctx.db).forget([i.backup_id for i in infos])
    key = ctx.secrets.delete(slug, IDENTITY_SECRET)
    now = datetime.now(UTC)
    ctx.tenants.set_phase(slug, Phase.deleted, deletion.purged_reason(now))
    audit(
        sc,
        "tenant.purged",
        {"backups": len(infos), "key_destroyed": key, "expired_at": expires.isoformat()},
    )
    return f"deleted tenant expired: destroyed {len(infos)} backups and the backup key"


def refuse_deleted(ctx: Context, slug: str, what: str) -> None:
    """IllegalTransitionError (exit 4) when ``slug`` is deleted: ``what`` needs its app."""
    rec = ctx.tenants.get(slug)
    if rec is None or rec.phase is not Phase.deleted:
        return
    if deletion.is_purged(rec.reason):
        hint = f"its backups were destroyed ({rec.reason})"
    else:
        until = backups_expire_at(ctx, rec)
        hint = (
            f"`osp-ops backup restore {slug} --to NEW` restores its backups into a new "
            f"tenant until {until:%Y-%m-%d %H:%M} UTC"
        )
    raise IllegalTransitionError(f"cannot {what} tenant {slug!r}: it is deleted", hint=hint)


def live(ctx: Context, specs: list[TenantSpec]) -> tuple[list[TenantSpec], list[str]]:
    """(specs of tenants not deleted, slugs of the deleted ones)."""
    deleted = {r.slug for r in ctx.tenants.list() if r.phase is Phase.deleted}
    return [s for s in specs if s.slug not in deleted], [s.slug for s in specs if s.slug in deleted]
