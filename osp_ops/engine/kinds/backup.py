"""The backup kind (cleanup, dump and upload, verify), the backup before an upgrade,
and the repair of a lost manifest (``engine/repair.py``).

``dump-and-upload`` records the new backup's id in its step data (``backup_id``);
``verify-new-backup`` reads it from there. Results go to the state DB cache
(``store/backups.py``) and the audit log; the object store stays the source of truth.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC
from typing import Any

from osp_ops.backups import (
    BackupInfo,
    Manifest,
    cleanup,
    list_backups,
    manifest_key,
    run_backup,
    verify_backup,
)
from osp_ops.domain.display import rate, size
from osp_ops.domain.errors import BackupError, NotFoundError
from osp_ops.domain.spec import dump_spec
from osp_ops.engine.backup_access import (
    access_for,
    known_mac_key,
    main_tables,
    metered_source,
    nothing_to_back_up,
    say,
    store_for,
    tenant_keys,
)
from osp_ops.engine.context import Context
from osp_ops.engine.registry import Kind, Registry, StepResult
from osp_ops.engine.repair import repair_manifest
from osp_ops.engine.steps import StepContext, audit
from osp_ops.engine.verification import completed_ids, record_verify
from osp_ops.platforms.base import Event
from osp_ops.store.backups import Backups


def latest_complete(ctx: Context, slug: str) -> BackupInfo:
    """The newest complete backup; NotFoundError without one."""
    infos = [
        i
        for i in list_backups(store_for(ctx), slug, mac_key=known_mac_key(ctx, slug))
        if i.state == "complete"
    ]
    if not infos:
        raise NotFoundError(f"tenant {slug!r} has no complete backup")
    return infos[-1]


def take_backup(sc: StepContext) -> Manifest:
    """Dump the database (and files), upload, write the manifest; record it."""
    ctx, spec = sc.ctx, sc.spec
    secret, public = tenant_keys(ctx, spec.slug)
    recipients: list[str] = []
    if spec.backup.encrypt:
        recipients = [public]
        if ctx.settings.effective_recovery_public_key:
            recipients.append(ctx.settings.effective_recovery_public_key)
    access = access_for(ctx, spec)
    admin = access.database_admin(spec)
    files = access.files_command(spec)
    rec = ctx.tenants.get(spec.slug)
    # pg_dump and the row counts share one snapshot, so a drill's comparison holds on a
    # busy tenant; the counts run beside the dump, in the transaction that exported it.
    with (
        admin.exported_snapshot(access.database_name(spec)) as snapshot,
        ThreadPoolExecutor(1, thread_name_prefix="row-counts") as pool,
    ):
        counts = pool.submit(snapshot.row_counts, main_tables(ctx, spec))
        dump = access.dump_command(spec, sc.secrets(), snapshot=snapshot.id)
        manifest = run_backup(
            source=metered_source(dump, "pg_dump-custom", sc, "database"),
            files=metered_source(files, "tar", sc, "files") if files else None,
            store=store_for(ctx),
            tenant=spec.slug,
            spec_yaml=dump_spec(spec),
            recipients=recipients,
            app_version=(rec.observed_version if rec else None) or spec.app.version,
            row_counts=counts.result,
            versions=admin.versions(),
            mac_key=manifest_key(secret),
            reporter=say(sc),
        )
    for obj in manifest.body.objects:
        sc.report(
            Event(
                f"{obj.name}: {size(obj.plain_size)} read, {size(obj.size)} stored in "
                f"{obj.seconds:.1f} s ({rate(obj.plain_size, obj.seconds)})",
                host=spec.slug,
                status="info",
            )
        )
    Backups(ctx.db).record(
        tenant=spec.slug,
        backup_id=manifest.backup_id,
        created_at=manifest.body.started_at.astimezone(UTC).replace(tzinfo=None),
        size=sum(o.size for o in manifest.body.objects),
        manifest=manifest.model_dump(mode="json"),
    )
    return manifest


def verify_and_record(sc: StepContext, backup_id: str, source: str | None = None) -> str:
    """Verify end to end with the key of ``source`` (default: the tenant itself);
    BackupError on any problem. The cache records it for the tenant's own backups."""
    tenant = source or sc.spec.slug
    secret, _ = tenant_keys(sc.ctx, tenant)
    report = verify_backup(
        store_for(sc.ctx), tenant, backup_id, [secret], mac_key=manifest_key(secret)
    )
    if tenant == sc.spec.slug:
        record_verify(sc.ctx, report)
    report.raise_for_problems()
    return f"verified {tenant}/{backup_id}: {size(report.bytes_read)} read ({rate(report.bytes_read, report.seconds)})"


def cleanup_incomplete(sc: StepContext) -> str:
    """Remove what interrupted backups left (we hold the tenant lease); never a backup
    the state DB recorded as complete."""
    removed = cleanup(
        store_for(sc.ctx), sc.spec.slug, completed=completed_ids(sc.ctx, sc.spec.slug)
    )
    return f"removed {', '.join(removed)}" if removed else "nothing to clean"


def dump_and_upload(sc: StepContext) -> StepResult:
    """One new backup; its id goes to the step data (the verify step reads it)."""
    manifest = take_backup(sc)
    audit(sc, "backup.created", {"backup": manifest.backup_id})
    return StepResult(f"backup {manifest.backup_id}", {"backup_id": manifest.backup_id})


def _backup_of_this_operation(sc: StepContext) -> str:
    data = sc.data_of("dump-and-upload")
    if data is None or not data.get("backup_id"):
        raise BackupError(f"operation {sc.op.id} recorded no backup to verify")
    return str(data["backup_id"])


def verify_new_backup(sc: StepContext) -> str:
    """Verify the backup this operation took."""
    backup_id = _backup_of_this_operation(sc)
    out = verify_and_record(sc, backup_id)
    audit(sc, "backup.verified", {"backup": backup_id})
    return out


def backup_before_upgrade(sc: StepContext) -> StepResult | str:
    """A full verified backup before the app changes (recorded and audited).

    Only an app-only platform with no data behind it skips it (unit tests of upgrades);
    everywhere else a failed backup stops the upgrade.
    """
    skip = nothing_to_back_up(sc.ctx, sc.spec)
    if skip is not None:
        return f"skipped: {skip}"
    return gate_backup(sc, before="upgrade")


def gate_backup(sc: StepContext, *, before: str) -> StepResult:
    """A new verified backup ``before`` the operation changes the tenant (an upgrade, a
    delete), after removing what interrupted backups left; recorded, audited, and its id
    in the step data."""
    cleanup_incomplete(sc)
    manifest = take_backup(sc)
    verify_and_record(sc, manifest.backup_id)
    audit(sc, "backup.created", {"backup": manifest.backup_id, "before": before})
    return StepResult(f"backup {manifest.backup_id}", {"backup_id": manifest.backup_id})


BACKUP = Kind(
    "backup", ("cleanup-incomplete", "dump-and-upload", "verify-new-backup"), failure_phase=None
)
REPAIR = Kind("repair", ("repair-manifest",), failure_phase=None)


def register(registry: Registry[Any]) -> None:
    """Add the backup and repair kinds, and the step ``backup-before-upgrade`` (which
    ``request_upgrade`` puts in front of every upgrade)."""
    registry.register(
        BACKUP,
        {
            "cleanup-incomplete": cleanup_incomplete,
            "dump-and-upload": dump_and_upload,
            "verify-new-backup": verify_new_backup,
            "backup-before-upgrade": backup_before_upgrade,
        },
    )
    registry.register(REPAIR, {"repair-manifest": repair_manifest})
