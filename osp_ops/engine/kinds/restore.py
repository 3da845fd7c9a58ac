"""The restore kind (in place, or into a clone), and the data restores retire.

A restore goes into a new database ``<db>_r<timestamp>`` (and files beside the live
ones), stops the app, switches by renames, and starts the app again; the switched-away
data is kept (``<db>_old_<ts>``, ``media.old-<ts>``) until ``drop_retired``.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from typing import Any

from osp_ops.backups import BackupInfo, list_backups, manifest_key, restore_backup
from osp_ops.backups.restore import PG_RESTORE_ARGS, Sink
from osp_ops.domain.errors import BackupError, NotFoundError
from osp_ops.domain.names import db_name_for
from osp_ops.domain.phases import Phase
from osp_ops.domain.spec import TenantSpec, validate_spec
from osp_ops.engine import restore_staging
from osp_ops.engine.backup_access import (
    access_for,
    known_mac_key,
    say,
    store_for,
    tenant_keys,
)
from osp_ops.engine.context import Context
from osp_ops.engine.kinds.backup import latest_complete, verify_and_record
from osp_ops.engine.registry import Kind, Registry
from osp_ops.engine.steps import StepContext, audit
from osp_ops.engine.verification import completed_ids
from osp_ops.platforms.data import BackupAccess, FilesAccess


def _param(sc: StepContext, name: str) -> str:
    value = sc.params.get(name)
    if not value:
        raise BackupError(f"operation {sc.op.id} has no {name}")
    return str(value)


def _source_tenant(sc: StepContext) -> str:
    """Whose backup this operation restores: the tenant's own, or a clone's source."""
    return str(sc.params.get("source_tenant") or sc.spec.slug)


def restore_database(
    sc: StepContext, backup_id: str, database: str, *, source: str, verify_first: bool
) -> float:
    """(Re)create ``database`` and restore ``source``'s backup into it; returns seconds."""
    access = access_for(sc.ctx, sc.spec)
    admin = access.database_admin(sc.spec)
    owner = db_name_for(sc.spec.slug)
    admin.drop(database)  # a rerun starts from an empty database
    admin.create(database, owner=owner)
    secret, _ = tenant_keys(sc.ctx, source)
    cmd = admin.restore_command(database, (*PG_RESTORE_ARGS, f"--role={owner}"))
    t0 = time.monotonic()
    restore_backup(
        store=store_for(sc.ctx),
        tenant=source,
        backup_id=backup_id,
        identities=[secret],
        target_command=Sink(cmd.argv, cmd.env),
        mac_key=manifest_key(secret),
        verify_first=verify_first,
        reporter=say(sc),
    )
    return time.monotonic() - t0


def extract_files(sc: StepContext, backup_id: str, name: str, *, source: str) -> bool:
    """Extract ``source``'s uploaded files beside the live ones; False when there are none."""
    access = access_for(sc.ctx, sc.spec)
    if not isinstance(access, FilesAccess):
        return False
    secret, _ = tenant_keys(sc.ctx, source)
    cmd = access.files_restore_command(sc.spec, name)
    report = restore_backup(
        store=store_for(sc.ctx),
        tenant=source,
        backup_id=backup_id,
        identities=[secret],
        files_command=Sink(cmd.argv, cmd.env),
        mac_key=manifest_key(secret),
        verify_first=False,
        reporter=say(sc),
    )
    return report.files_restored


def verify_backup_step(sc: StepContext) -> str:
    """Verify the backup to restore before touching anything."""
    return verify_and_record(sc, _param(sc, "backup_id"), _source_tenant(sc))


def restore_to_new_database(sc: StepContext) -> str:
    """Restore into the new database ``<db>_r<timestamp>`` (the live one is untouched)."""
    backup_id, target = _param(sc, "backup_id"), _param(sc, "target_database")
    seconds = restore_database(sc, backup_id, target, source=_source_tenant(sc), verify_first=False)
    return f"restored {backup_id} into {target} in {seconds:.1f} s"


def restore_files(sc: StepContext) -> str:
    """Restore the uploaded files beside the live ones (hosts); nothing elsewhere."""
    name = sc.params.get("files_new")
    if not name:
        return "no files to restore on this platform"
    if not extract_files(sc, _param(sc, "backup_id"), str(name), source=_source_tenant(sc)):
        return "no files in this backup or on this platform"
    return f"files restored into {name}"


def _was_suspended(sc: StepContext) -> bool:
    return bool(sc.params.get("was_suspended"))


def stop_app(sc: StepContext) -> str:
    """Maintenance page on, app stopped: nothing writes while the data is switched."""
    if _was_suspended(sc):
        return "already suspended"
    sc.platform.suspend(spec=sc.spec, reporter=sc.report)
    return "app stopped, maintenance page on"


def switch_database(sc: StepContext) -> str:
    """Rename: current -> ``<db>_old_<ts>``, restored -> current (the app URL stays valid)."""
    access = access_for(sc.ctx, sc.spec)
    current = access.database_name(sc.spec)
    target, retired = _param(sc, "target_database"), _param(sc, "retired_database")
    access.database_admin(sc.spec).switch(current=current, new=target, retired=retired)
    audit(
        sc,
        "backup.restored",
        {
            "backup": _param(sc, "backup_id"),
            "source": _source_tenant(sc),
            "database": current,
            "retired": retired,
        },
    )
    return f"{current} is now backup {_param(sc, 'backup_id')}; the old one is {retired}"


def switch_files(sc: StepContext) -> str:
    """Rename: media -> ``media.old-<ts>``, restored -> media."""
    new, retired = sc.params.get("files_new"), sc.params.get("files_retired")
    access = access_for(sc.ctx, sc.spec)
    if not new or not retired or not isinstance(access, FilesAccess):
        return "no files to switch"
    if str(new) not in access.list_files(sc.spec, str(new)):
        return "nothing to switch (no files restored, or switched already)"
    access.switch_files(sc.spec, new=str(new), retired=str(retired))
    return f"uploaded files switched; the old ones are in {retired}"


def start_app(sc: StepContext) -> str:
    """Start the app on the restored data (a fresh process: no stale cache)."""
    if _was_suspended(sc):
        # reset-admin may have restarted the app to refresh its cache: stop it again.
        sc.platform.suspend(spec=sc.spec, reporter=sc.report)
        return "left suspended, as it was before the restore"
    sc.platform.resume(spec=sc.spec, reporter=sc.report)
    return "app started"


def reset_admin(sc: StepContext) -> str:
    """The restored admin gets the tenant's current password (``tenant credentials``):
    a backup from before a rotation holds an older one, a clone's its source's."""
    result = sc.platform.run_task(
        spec=sc.spec,
        version=sc.version,
        task="bootstrap-admin",
        secrets=sc.secrets(),
        reporter=sc.report,
    )
    if not result.ok:
        raise BackupError(f"admin bootstrap of the restored {sc.spec.slug} failed")
    whose = "the clone's own" if sc.params.get("source_tenant") else "the current one"
    return f"admin password set to {whose} (osp-ops tenant credentials)"


def restore_params(
    ctx: Context,
    spec: TenantSpec,
    backup_id: str,
    now: datetime,
    *,
    source_tenant: str | None = None,
) -> dict[str, Any]:
    """Parameters of a restore operation of ``spec`` at ``now``."""
    access = access_for(ctx, spec)
    target, retired = restore_names(spec, access, now)
    ts = now.strftime("%Y%m%d%H%M%S")
    rec = ctx.tenants.get(spec.slug)
    params: dict[str, Any] = {
        "backup_id": backup_id,
        "target_database": target,
        "retired_database": retired,
        "was_suspended": bool(rec and rec.phase == Phase.suspended),
    }
    if isinstance(access, FilesAccess):
        params |= {"files_new": f"media.restore-{ts}", "files_retired": f"media.old-{ts}"}
    if source_tenant:
        params["source_tenant"] = source_tenant
    return params


CLONE_LABEL = "clone-of"


def clone_spec(
    ctx: Context, source: TenantSpec, slug: str, *, backup: BackupInfo, host: str | None = None
) -> TenantSpec:
    """The spec of a new tenant ``slug`` made from ``source``'s backup.

    Same app (at the version the backup was taken with), platform, plan and policies;
    its own host name (``<slug>.<base domain>`` unless given), no aliases, and the label
    ``clone-of`` naming the source.
    """
    data = source.model_dump(mode="json")
    version = backup.manifest.body.app_version if backup.manifest else None
    if version and version in {v.version for v in ctx.catalog.app(source.app.name).versions}:
        data["app"]["version"] = version
    data["slug"] = slug
    data["name"] = f"{source.name} (copy of {backup.backup_id})"[:120]
    data["hosts"] = {"primary": host or f"{slug}.{ctx.settings.base_domain}", "aliases": []}
    data["labels"] = {**source.labels, CLONE_LABEL: source.slug}
    return validate_spec(data, source=f"clone of {source.slug} as {slug}", catalog=ctx.catalog)


def find_backup(ctx: Context, slug: str, backup_id: str | None) -> BackupInfo:
    """The backup ``backup_id`` of ``slug`` (the newest complete when None)."""
    if backup_id is None:
        return latest_complete(ctx, slug)
    infos = list_backups(
        store_for(ctx), slug, mac_key=known_mac_key(ctx, slug), completed=completed_ids(ctx, slug)
    )
    for info in infos:
        if info.backup_id == backup_id:
            if info.state != "complete":
                raise BackupError(f"backup {backup_id} of {slug} is {info.state}: {info.problem}")
            return info
    raise NotFoundError(f"tenant {slug!r} has no backup {backup_id!r}")


def restore_names(spec: TenantSpec, access: BackupAccess, now: datetime) -> tuple[str, str]:
    """(new database, retired database) names for a restore at ``now``."""
    db = access.database_name(spec)
    ts = now.strftime("%Y%m%d%H%M%S")
    return f"{db}_r{ts}", f"{db}_old_{ts}"


def retired_databases(ctx: Context, spec: TenantSpec) -> list[str]:
    """Databases and file directories a restore switched away from (kept until dropped)."""
    access = access_for(ctx, spec)
    names = access.database_admin(spec).list(f"{access.database_name(spec)}\\_old\\_%")
    if isinstance(access, FilesAccess):
        names += access.list_files(spec, "media.old-*")
    return names + restore_staging.staged(ctx, spec, access)  # what killed runs staged


_RETIRED_AT = re.compile(r"(?:_old_|\.old-|_r|\.restore-)(\d{14})$")


def retired_at(name: str) -> datetime | None:
    """When a restore retired ``name`` (from the timestamp in its name)."""
    m = _RETIRED_AT.search(name)
    return datetime.strptime(m.group(1), "%Y%m%d%H%M%S").replace(tzinfo=UTC) if m else None


def drop_retired(
    ctx: Context, spec: TenantSpec, *, older_than: datetime | None = None
) -> list[str]:
    """Drop the retired databases and file directories (only those retired before
    ``older_than`` when given); audited."""
    access = access_for(ctx, spec)
    admin = access.database_admin(spec)
    names = retired_databases(ctx, spec)
    if older_than is not None:
        names = [n for n in names if (at := retired_at(n)) is not None and at < older_than]
    for name in names:
        if name.startswith("media.") and isinstance(access, FilesAccess):
            access.drop_files(spec, name)
        else:
            admin.drop(name)
        ctx.audit.append(
            actor=ctx.actor,
            action="backup.retired-dropped",
            tenant=spec.slug,
            details={"retired": name},
        )
    restore_staging.cancel_staging_ops(ctx, spec, names)
    return names


RESTORE = Kind(
    "restore",
    (
        "verify-backup",
        "restore-to-new-database",
        "restore-files",
        "stop-app",
        "switch-database",
        "switch-files",
        "reset-admin",
        "start-app",
    ),
    failure_phase=None,
)


def register(registry: Registry[Any]) -> None:
    """Add the restore kind."""
    registry.register(
        RESTORE,
        {
            "verify-backup": verify_backup_step,
            "restore-to-new-database": restore_to_new_database,
            "restore-files": restore_files,
            "stop-app": stop_app,
            "switch-database": switch_database,
            "switch-files": switch_files,
            "start-app": start_app,
            "reset-admin": reset_admin,
        },
    )
