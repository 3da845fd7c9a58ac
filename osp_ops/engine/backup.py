"""Backup operations: backup, backup-before-upgrade, prune, restore, drill.

Each tenant has an age identity, the secret ``backup_identity``, generated once; backups
are encrypted to its public key and to the ops recovery key (``engine/recovery.py``).
The manifest MAC key is derived from it (``manifest_key``) and used for every run, list,
verify and restore. Where the data is comes from ``platforms/data.py``
(``BackupAccess``). Results go to the state DB cache (``store/backups.py``) and the
audit log; the object store stays the source of truth.

Importing this module registers the kinds (and the ``backup-before-upgrade`` step, which
``request_upgrade`` then puts in front of every upgrade).
"""

from __future__ import annotations

import contextlib
import re
import secrets as _random
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import IO, Any, cast
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
from osp_ops.backups.restore import PG_RESTORE_ARGS, Sink
from osp_ops.domain.display import plural, rate, size
from osp_ops.domain.errors import BackupError, ConfigError, NotFoundError, PlatformError
from osp_ops.domain.names import db_name_for
from osp_ops.domain.phases import Phase
from osp_ops.domain.spec import TenantSpec, dump_spec, validate_spec
from osp_ops.engine import app_storage, restore_staging
from osp_ops.engine.context import Context
from osp_ops.engine.steps import Kind, StepContext, register
from osp_ops.engine.verification import completed_ids, record_verify
from osp_ops.platforms.base import AppDrill, Event
from osp_ops.platforms.data import BackupAccess, Command, FilesAccess, SharedServerAccess
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
        database = SharedServerAccess(dsn.get_secret_value())
        if app_storage.enabled(ctx.settings, spec):
            return app_storage.BucketBackupAccess(database, ctx.settings)
        return database
    if getattr(platform, "name", "") == "fake":
        raise ConfigError(f"the fake platform holds no data of {spec.slug!r} to back up")
    if spec.platform.kind == "hosts":
        from osp_ops.platforms.hosts_data import HostsBackupAccess

        return HostsBackupAccess.for_platform(platform, ctx.settings)
    raise ConfigError(f"no backup access for platform {spec.platform.kind!r}")


def main_tables(ctx: Context, spec: TenantSpec) -> tuple[str, ...]:
    """The app's main tables (catalog), whose row counts go into the manifest."""
    return tuple(ctx.catalog.app(spec.app.name).main_tables)


PROGRESS_EVERY = 2.0  # seconds between progress events of a running dump


class _MeteredReader:
    """Counts what the pipeline reads and reports bytes and MiB/s every few seconds."""

    def __init__(self, inner: IO[bytes], report: Callable[[int, float], None]) -> None:
        self.inner, self.report = inner, report
        self.count, self.t0 = 0, time.monotonic()
        self.last = self.t0

    def read(self, n: int = -1) -> bytes:
        data = self.inner.read(n)
        self.count += len(data)
        now = time.monotonic()
        if now - self.last >= PROGRESS_EVERY:
            self.last = now
            self.report(self.count, now - self.t0)
        return data

    def fileno(self) -> int:
        return self.inner.fileno()


@dataclass
class _MeteredSource:
    """A Source whose stream reports its progress (the pipeline is unchanged)."""

    inner: Source
    report: Callable[[int, float], None]
    kind: str = ""

    def __post_init__(self) -> None:
        self.kind = self.inner.kind

    @property
    def versions(self) -> Mapping[str, str]:
        return dict(getattr(self.inner, "versions", {}) or {})

    def open(self) -> IO[bytes]:
        return cast(IO[bytes], _MeteredReader(self.inner.open(), self.report))

    def finish(self) -> None:
        self.inner.finish()

    def kill(self) -> None:
        self.inner.kill()


def _source(cmd: Command, kind: str, sc: StepContext, label: str) -> Source:
    """The command as a backup source that reports its progress on ``sc``."""
    source = CommandSource(argv=list(cmd.argv), env=dict(cmd.env), kind=kind)

    def report(n: int, seconds: float) -> None:
        message = f"{label}: {_mb(n)} read, {_rate(n, seconds)}"
        sc.report(Event(message, host=sc.spec.slug, status="progress"))

    return _MeteredSource(source, report)


def _mb(n: int) -> str:
    return size(n)


def _rate(n: int, seconds: float) -> str:
    return rate(n, seconds)


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
            source=_source(dump, "pg_dump-custom", sc, "database"),
            files=_source(files, "tar", sc, "files") if files else None,
            store=store_for(ctx),
            tenant=spec.slug,
            spec_yaml=dump_spec(spec),
            recipients=recipients,
            app_version=(rec.observed_version if rec else None) or spec.app.version,
            row_counts=counts.result,
            versions=admin.versions(),
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
    return f"verified {tenant}/{backup_id}: {_mb(report.bytes_read)} read ({_rate(report.bytes_read, report.seconds)})"


def cleanup_incomplete(sc: StepContext) -> str:
    """Remove what interrupted backups left (we hold the tenant lease); never a backup
    the state DB recorded as complete."""
    removed = cleanup(
        store_for(sc.ctx), sc.spec.slug, completed=completed_ids(sc.ctx, sc.spec.slug)
    )
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
    cleanup(store_for(sc.ctx), sc.spec.slug, completed=completed_ids(sc.ctx, sc.spec.slug))
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
        completed=cache.completed_ids(spec.slug),
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


# -- restore ---------------------------------------------------------------------------


def _param(sc: StepContext, name: str) -> str:
    value = sc.params.get(name)
    if not value:
        raise BackupError(f"operation {sc.op.id} has no {name}")
    return str(value)


def _source_tenant(sc: StepContext) -> str:
    """Whose backup this operation restores: the tenant's own, or a clone's source."""
    return str(sc.params.get("source_tenant") or sc.spec.slug)


def _restore_database(
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
        reporter=_say(sc),
    )
    return time.monotonic() - t0


def _restore_files(sc: StepContext, backup_id: str, name: str, *, source: str) -> bool:
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
        reporter=_say(sc),
    )
    return report.files_restored


def verify_backup_step(sc: StepContext) -> str:
    """Verify the backup to restore before touching anything."""
    return verify_and_record(sc, _param(sc, "backup_id"), _source_tenant(sc))


def restore_to_new_database(sc: StepContext) -> str:
    """Restore into the new database ``<db>_r<timestamp>`` (the live one is untouched)."""
    backup_id, target = _param(sc, "backup_id"), _param(sc, "target_database")
    seconds = _restore_database(
        sc, backup_id, target, source=_source_tenant(sc), verify_first=False
    )
    return f"restored {backup_id} into {target} in {seconds:.1f} s"


def restore_files(sc: StepContext) -> str:
    """Restore the uploaded files beside the live ones (hosts); nothing elsewhere."""
    name = sc.params.get("files_new")
    if not name:
        return "no files to restore on this platform"
    if not _restore_files(sc, _param(sc, "backup_id"), str(name), source=_source_tenant(sc)):
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
    _audit(
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
        return "left suspended, as it was before the restore"
    sc.platform.resume(spec=sc.spec, reporter=sc.report)
    return "app started"


def reset_admin(sc: StepContext) -> str:
    """A clone gets its own admin password (the restored one is its source's)."""
    if not sc.params.get("source_tenant"):
        return "not a clone: the restored admin keeps its password"
    result = sc.platform.run_task(
        spec=sc.spec,
        version=sc.version,
        task="bootstrap-admin",
        secrets=sc.secrets(),
        reporter=sc.report,
    )
    if not result.ok:
        raise BackupError(f"admin bootstrap of the clone {sc.spec.slug} failed")
    return "admin password set to the clone's own (osp-ops tenant credentials)"


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


# -- drill -----------------------------------------------------------------------------


def _drill_app(sc: StepContext, scratch: str, files: str | None) -> tuple[str, str]:
    """(app check, problem): a scratch app on the restored data where the platform can
    run one (``ok``/``failed``), else ``not run``; the problem is '' when fine."""
    platform = sc.platform
    if not isinstance(platform, AppDrill):
        return "not run", ""
    result = platform.drill_app(
        spec=sc.spec, database=scratch, files=files, secrets=sc.secrets(), reporter=sc.report
    )
    return ("ok", "") if result.ok else ("failed", f"scratch app: {result.output or 'failed'}")


def drill(sc: StepContext) -> str:
    """Restore the latest backup into scratch data, compare row counts, start a scratch app.

    Scratch database ``<db>_drill_<hex>`` and, on hosts, files in ``media.drill-<hex>``;
    both are removed whatever the outcome. The result and RTO go to the state DB and the
    audit log.
    """
    ctx, spec = sc.ctx, sc.spec
    chosen = sc.params.get("backup_id")  # --backup; the latest complete one by default
    info = find_backup(ctx, spec.slug, str(chosen) if chosen else None)
    access = access_for(ctx, spec)
    admin = access.database_admin(spec)
    restore_staging.drop_drill_leftovers(ctx, spec, access)  # of drills killed midway
    tag = _random.token_hex(3)
    scratch = f"{access.database_name(spec)}_drill_{tag}"
    files_dir = f"media.drill-{tag}" if isinstance(access, FilesAccess) else None
    started = utcnow()
    drill_id = f"drill-{sc.op.id}"
    expected: dict[str, int] = {}
    found: dict[str, int] = {}
    result, problem, app_check = "failed", "", "not run"
    rto: float | None = None
    try:
        t0 = time.monotonic()
        verify_and_record(sc, info.backup_id)  # a failed verify is recorded, then fails it
        _restore_database(sc, info.backup_id, scratch, source=spec.slug, verify_first=False)
        restored_files = files_dir is not None and _restore_files(
            sc, info.backup_id, files_dir, source=spec.slug
        )
        manifest = info.manifest
        expected = dict(manifest.body.row_counts) if manifest else {}
        found = admin.row_counts(scratch, main_tables(ctx, spec))
        if found != expected:
            problem = f"row counts differ: manifest {expected}, restored {found}"
        else:
            app_check, problem = _drill_app(sc, scratch, files_dir if restored_files else None)
        rto = round(time.monotonic() - t0, 3)
        result = "failed" if problem else "ok"
    except (BackupError, NotFoundError, PlatformError) as e:
        problem = str(e)
    finally:
        admin.drop(scratch)
        if files_dir is not None and isinstance(access, FilesAccess):
            access.drop_files(spec, files_dir)
        details = {
            "expected": expected,
            "found": found,
            "scratch": scratch,
            "app": app_check,
            "problem": problem,
        }
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
    app = ", scratch app answered and admin logged in" if app_check == "ok" else ""
    rows = plural(sum(found.values()), "row")
    return f"drill ok: backup {info.backup_id}, {rows}{app}, RTO {rto:.1f} s"


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
    ),
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
register(Kind("drill", ("drill",), failure_phase=None), {"drill": drill})
