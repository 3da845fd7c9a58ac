"""Backup operations: backup, backup-before-upgrade, prune, restore, drill.

Each tenant has an age identity, the secret ``backup_identity``, generated once; backups
are encrypted to its public key and to ``settings.recovery_public_key``. The manifest
MAC key is derived from it (``manifest_key``) and used for every run, list, verify and
restore. Where the data is comes from ``platforms/data.py`` (``BackupAccess``). Results
go to the state DB cache (``store/backups.py``) and the audit log; the object store
stays the source of truth.

Importing this module registers the kinds (and the ``backup-before-upgrade`` step, which
``request_upgrade`` then puts in front of every upgrade).
"""

from __future__ import annotations

import secrets as _random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from osp_ops.backups import (
    BackupInfo,
    CommandSource,
    Manifest,
    ObjectStore,
    Source,
    cleanup,
    list_backups,
    manifest_key,
    new_identity,
    open_store,
    prune,
    restore_backup,
    run_backup,
    verify_backup,
)
from osp_ops.backups.pipeline import parse_identities
from osp_ops.backups.restore import PG_RESTORE_ARGS
from osp_ops.domain.errors import BackupError, ConfigError, NotFoundError
from osp_ops.domain.spec import TenantSpec, dump_spec
from osp_ops.engine.context import Context
from osp_ops.engine.steps import Kind, StepContext, register
from osp_ops.platforms.base import Event
from osp_ops.platforms.data import BackupAccess, Command, SharedServerAccess
from osp_ops.platforms.pgtenant import db_name_for
from osp_ops.store.backups import Backups
from osp_ops.store.db import utcnow

IDENTITY_SECRET = "backup_identity"  # noqa: S105 (a secret's name, not its value)


# -- keys, store, access ---------------------------------------------------------------


def tenant_keys(ctx: Context, slug: str) -> tuple[str, str]:
    """The tenant's age key pair (secret, public), created once."""
    ctx.secrets.ensure(slug, IDENTITY_SECRET, lambda: new_identity()[0])
    secret = ctx.secrets.get(slug, IDENTITY_SECRET)
    return secret, str(parse_identities([secret])[0].to_public())


def known_mac_key(ctx: Context, slug: str) -> bytes | None:
    """The MAC key when the tenant key is known (None with a fresh state DB)."""
    if IDENTITY_SECRET not in ctx.secrets.names(slug):
        return None
    return manifest_key(ctx.secrets.get(slug, IDENTITY_SECRET))


def store_for(ctx: Context) -> ObjectStore:
    """The backup store of the settings."""
    return open_store(ctx.settings.effective_backup_url, ctx.settings)


def access_for(ctx: Context, spec: TenantSpec) -> BackupAccess:
    """Where the tenant's data is: the platform itself when it knows, else by kind."""
    platform = ctx.platform(spec)
    if isinstance(platform, BackupAccess):
        return platform
    if spec.platform.kind == "kubernetes":
        dsn = ctx.settings.platform_db_admin_dsn
        if dsn is None:
            raise ConfigError("platform_db_admin_dsn is not set: cannot reach tenant databases")
        return SharedServerAccess(dsn.get_secret_value())
    if getattr(platform, "name", "") == "fake":
        raise ConfigError(f"the fake platform holds no data of {spec.slug!r} to back up")
    if spec.platform.kind == "hosts":
        from osp_ops.platforms.hosts_data import HostsBackupAccess

        return HostsBackupAccess.for_platform(platform, ctx.settings)
    raise ConfigError(f"no backup access for platform {spec.platform.kind!r}")


def main_tables(ctx: Context, spec: TenantSpec) -> tuple[str, ...]:
    """The app's main tables (catalog), whose row counts go into the manifest."""
    return tuple(ctx.catalog.app(spec.app.name).main_tables)


def _source(cmd: Command, kind: str) -> Source:
    return CommandSource(argv=list(cmd.argv), env=dict(cmd.env), kind=kind)


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def _rate(n: int, seconds: float) -> str:
    return f"{n / 1e6 / max(seconds, 1e-6):.1f} MB/s"


def _say(sc: StepContext) -> Callable[[str], None]:
    def report(message: str) -> None:
        sc.report(Event(message, host=sc.spec.slug, status="info"))

    return report


def _audit(sc: StepContext, action: str, details: dict[str, Any]) -> None:
    sc.ctx.audit.append(
        actor=sc.op.requested_by,
        action=action,
        tenant=sc.spec.slug,
        details={"operation": sc.op.id, **details},
    )


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


# -- backup ----------------------------------------------------------------------------


def take_backup(sc: StepContext) -> Manifest:
    """Dump the database (and files), upload, write the manifest; record it."""
    ctx, spec = sc.ctx, sc.spec
    secret, public = tenant_keys(ctx, spec.slug)
    recipients: list[str] = []
    if spec.backup.encrypt:
        recipients = [public]
        if ctx.settings.recovery_public_key:
            recipients.append(ctx.settings.recovery_public_key)
    access = access_for(ctx, spec)
    admin = access.database_admin(spec)
    counts = admin.row_counts(access.database_name(spec), main_tables(ctx, spec))
    files = access.files_command(spec)
    rec = ctx.tenants.get(spec.slug)
    manifest = run_backup(
        source=_source(access.dump_command(spec, sc.secrets()), "pg_dump-custom"),
        files=_source(files, "tar") if files else None,
        store=store_for(ctx),
        tenant=spec.slug,
        spec_yaml=dump_spec(spec),
        recipients=recipients,
        app_version=(rec.observed_version if rec else None) or spec.app.version,
        row_counts=counts,
        mac_key=manifest_key(secret),
        reporter=_say(sc),
    )
    for obj in manifest.body.objects:
        sc.report(
            Event(
                f"{obj.name}: {_mb(obj.plain_size)} read, {_mb(obj.size)} stored in "
                f"{obj.seconds:.1f} s ({_rate(obj.plain_size, obj.seconds)})",
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


def verify_and_record(sc: StepContext, backup_id: str) -> str:
    """Verify end to end with the tenant key; BackupError on any problem."""
    secret, _ = tenant_keys(sc.ctx, sc.spec.slug)
    report = verify_backup(
        store_for(sc.ctx), sc.spec.slug, backup_id, [secret], mac_key=manifest_key(secret)
    )
    report.raise_for_problems()
    Backups(sc.ctx.db).mark_verified(backup_id)
    return f"verified {backup_id}: {_mb(report.bytes_read)} read ({_rate(report.bytes_read, report.seconds)})"


def cleanup_incomplete(sc: StepContext) -> str:
    """Remove what interrupted backups left (we hold the tenant lease)."""
    removed = cleanup(store_for(sc.ctx), sc.spec.slug)
    return f"removed {', '.join(removed)}" if removed else "nothing to clean"


def dump_and_upload(sc: StepContext) -> str:
    """One new backup; the output names it (the verify step reads it)."""
    manifest = take_backup(sc)
    _audit(sc, "backup.created", {"backup": manifest.backup_id})
    return f"backup {manifest.backup_id}"


def _backup_of_this_operation(sc: StepContext) -> str:
    for step in sc.op.steps:
        if step.name == "dump-and-upload" and step.output and step.output.startswith("backup "):
            return step.output.split()[1]
    # The runner hands steps the operation as loaded; reread for the latest outputs.
    op = sc.ctx.operations.get(sc.op.id)
    for step in op.steps:
        if step.name == "dump-and-upload" and step.output and step.output.startswith("backup "):
            return step.output.split()[1]
    raise BackupError(f"operation {sc.op.id} recorded no backup to verify")


def verify_new_backup(sc: StepContext) -> str:
    """Verify the backup this operation took."""
    backup_id = _backup_of_this_operation(sc)
    out = verify_and_record(sc, backup_id)
    _audit(sc, "backup.verified", {"backup": backup_id})
    return out


def backup_before_upgrade(sc: StepContext) -> str:
    """A full verified backup before the app changes (recorded and audited).

    Only a fake app platform with no real database behind it skips it (unit tests of
    upgrades); everywhere else a failed backup stops the upgrade.
    """
    if getattr(sc.platform, "name", "") == "fake":
        try:
            access_for(sc.ctx, sc.spec)
        except ConfigError as e:
            return f"skipped: {e}"
    cleanup(store_for(sc.ctx), sc.spec.slug)
    manifest = take_backup(sc)
    verify_and_record(sc, manifest.backup_id)
    _audit(sc, "backup.created", {"backup": manifest.backup_id, "before": "upgrade"})
    return f"backup {manifest.backup_id}"


# -- prune -----------------------------------------------------------------------------


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
        tz=ZoneInfo(spec.time_zone),
        dry_run=dry_run,
    )
    r = spec.backup.retention
    rule = f"daily {r.daily}, weekly {r.weekly}, monthly {r.monthly}, yearly {r.yearly}"
    if not dry_run:
        for backup_id in result.deleted:
            _audit(
                sc, "backup.pruned", {"backup": backup_id, "reason": f"outside retention ({rule})"}
            )
        for backup_id in result.incomplete_deleted:
            _audit(
                sc, "backup.pruned", {"backup": backup_id, "reason": "incomplete, older than 6 h"}
            )
        cache.forget([*result.deleted, *result.incomplete_deleted])
    for backup_id, reasons in sorted(result.kept.items()):
        sc.report(Event(f"keep {backup_id}: {', '.join(reasons)}", host=spec.slug, status="info"))
    for backup_id in (*result.deleted, *result.incomplete_deleted):
        word = "would delete" if dry_run else "deleted"
        sc.report(Event(f"{word} {backup_id}", host=spec.slug, status="changed"))
    verb = "would delete" if dry_run else "deleted"
    return (
        f"kept {len(result.kept)}, {verb} {len(result.deleted) + len(result.incomplete_deleted)}"
        + (f", corrupt {', '.join(result.corrupt)}" if result.corrupt else "")
    )


# -- restore ---------------------------------------------------------------------------


def _restore_into(sc: StepContext, backup_id: str, database: str) -> float:
    """(Re)create ``database`` and restore the backup into it; returns seconds."""
    access = access_for(sc.ctx, sc.spec)
    admin = access.database_admin(sc.spec)
    owner = db_name_for(sc.spec.slug)
    admin.drop(database)  # a rerun starts from an empty database
    admin.create(database, owner=owner)
    secret, _ = tenant_keys(sc.ctx, sc.spec.slug)
    t0 = time.monotonic()
    restore_backup(
        store=store_for(sc.ctx),
        tenant=sc.spec.slug,
        backup_id=backup_id,
        identities=[secret],
        target_dsn=admin.restore_dsn(database),
        mac_key=manifest_key(secret),
        pg_restore_args=(*PG_RESTORE_ARGS, f"--role={owner}"),
        reporter=_say(sc),
    )
    return time.monotonic() - t0


def _param(sc: StepContext, name: str) -> str:
    value = sc.params.get(name)
    if not value:
        raise BackupError(f"operation {sc.op.id} has no {name}")
    return str(value)


def verify_backup_step(sc: StepContext) -> str:
    """Verify the backup to restore before touching anything."""
    return verify_and_record(sc, _param(sc, "backup_id"))


def restore_to_new_database(sc: StepContext) -> str:
    """Restore into the new database ``<db>_r<timestamp>``."""
    backup_id, target = _param(sc, "backup_id"), _param(sc, "target_database")
    seconds = _restore_into(sc, backup_id, target)
    return f"restored {backup_id} into {target} in {seconds:.1f} s"


def switch_database(sc: StepContext) -> str:
    """Rename: current -> ``<db>_old_<ts>``, restored -> current (the app URL stays valid)."""
    access = access_for(sc.ctx, sc.spec)
    current = access.database_name(sc.spec)
    target, retired = _param(sc, "target_database"), _param(sc, "retired_database")
    access.database_admin(sc.spec).switch(current=current, new=target, retired=retired)
    _audit(
        sc,
        "backup.restored",
        {"backup": _param(sc, "backup_id"), "database": current, "retired": retired},
    )
    return f"{current} is now backup {_param(sc, 'backup_id')}; the old one is {retired}"


def restore_names(spec: TenantSpec, access: BackupAccess, now: datetime) -> tuple[str, str]:
    """(new database, retired database) names for a restore at ``now``."""
    db = access.database_name(spec)
    ts = now.strftime("%Y%m%d%H%M%S")
    return f"{db}_r{ts}", f"{db}_old_{ts}"


def retired_databases(ctx: Context, spec: TenantSpec) -> list[str]:
    """Databases a restore switched away from (kept until --confirm-drop)."""
    access = access_for(ctx, spec)
    return access.database_admin(spec).list(f"{access.database_name(spec)}\\_old\\_%")


def drop_retired(ctx: Context, spec: TenantSpec) -> list[str]:
    """Drop the retired databases; audited."""
    names = retired_databases(ctx, spec)
    admin = access_for(ctx, spec).database_admin(spec)
    for name in names:
        admin.drop(name)
        ctx.audit.append(
            actor=ctx.actor,
            action="backup.retired-dropped",
            tenant=spec.slug,
            details={"database": name},
        )
    return names


# -- drill -----------------------------------------------------------------------------


def drill(sc: StepContext) -> str:
    """Restore the latest complete backup into a scratch DB, compare row counts, drop it."""
    ctx, spec = sc.ctx, sc.spec
    info = latest_complete(ctx, spec.slug)
    access = access_for(ctx, spec)
    admin = access.database_admin(spec)
    scratch = f"{access.database_name(spec)}_drill_{_random.token_hex(3)}"
    started = utcnow()
    drill_id = f"drill-{sc.op.id}"
    expected: dict[str, int] = {}
    found: dict[str, int] = {}
    result, problem = "failed", ""
    rto: float | None = None
    try:
        t0 = time.monotonic()
        _restore_into(sc, info.backup_id, scratch)
        manifest = info.manifest
        expected = dict(manifest.body.row_counts) if manifest else {}
        found = admin.row_counts(scratch, main_tables(ctx, spec))
        rto = round(time.monotonic() - t0, 3)
        if found == expected:
            result = "ok"
        else:
            problem = f"row counts differ: manifest {expected}, restored {found}"
    except (BackupError, NotFoundError) as e:
        problem = str(e)
    finally:
        admin.drop(scratch)
        details = {"expected": expected, "found": found, "scratch": scratch, "problem": problem}
        Backups(ctx.db).record_drill(
            drill_id=drill_id,
            tenant=spec.slug,
            backup_id=info.backup_id,
            started_at=started,
            rto_seconds=rto,
            result=result,
            details=details,
        )
        _audit(sc, "backup.drill", {"backup": info.backup_id, "result": result, "rto_seconds": rto})
    if result != "ok":
        raise BackupError(f"drill of {spec.slug} backup {info.backup_id} failed: {problem}")
    return f"drill ok: backup {info.backup_id}, {sum(found.values())} rows, RTO {rto:.1f} s"


# -- registration ----------------------------------------------------------------------

register(
    Kind(
        "backup", ("cleanup-incomplete", "dump-and-upload", "verify-new-backup"), failure_phase=None
    ),
    {
        "cleanup-incomplete": cleanup_incomplete,
        "dump-and-upload": dump_and_upload,
        "verify-new-backup": verify_new_backup,
        "backup-before-upgrade": backup_before_upgrade,
    },
)
register(Kind("prune", ("prune",), failure_phase=None), {"prune": prune_backups})
register(
    Kind(
        "restore",
        ("verify-backup", "restore-to-new-database", "switch-database"),
        failure_phase=None,
    ),
    {
        "verify-backup": verify_backup_step,
        "restore-to-new-database": restore_to_new_database,
        "switch-database": switch_database,
    },
)
register(Kind("drill", ("drill",), failure_phase=None), {"drill": drill})
