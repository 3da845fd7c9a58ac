"""What every backup kind needs: the tenant's keys, the backup store, where its data is.

Each tenant has an age identity, the secret ``backup_identity``, generated once; backups
are encrypted to its public key and to the ops recovery key (``engine/recovery.py``).
The manifest MAC key is derived from it (``manifest_key``) and used for every run, list,
verify and restore. Where the data is (``BackupAccess``, ``platforms/data.py``) depends
on the tenant's platform kind (``DATA_ACCESS``): Kubernetes tenants' databases are on
the shared server of the settings, whatever runs their app; hosts tenants' data is on
their host, which only a platform with the ``DataAccess`` capability reaches.
"""

from __future__ import annotations

from collections.abc import Callable

from osp_ops.backups import (
    CommandSource,
    ObjectStore,
    Source,
    manifest_key,
    new_identity,
    open_store,
)
from osp_ops.backups.pipeline import parse_identities
from osp_ops.backups.sources import MeteredSource
from osp_ops.domain.display import rate, size
from osp_ops.domain.errors import ConfigError
from osp_ops.domain.spec import TenantSpec
from osp_ops.engine import app_storage
from osp_ops.engine.context import Context
from osp_ops.engine.steps import StepContext
from osp_ops.platforms.base import AppOnly, BucketStorage, DataAccess, Event, Platform
from osp_ops.platforms.data import BackupAccess, Command, SharedServerAccess

IDENTITY_SECRET = "backup_identity"  # noqa: S105 (a secret's name, not its value)


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


def _shared_server(ctx: Context, platform: Platform, spec: TenantSpec) -> BackupAccess:
    """The tenant database on the shared server of ``platform_db_admin_dsn`` (and its
    uploads bucket where the platform keeps one: ``BucketStorage``)."""
    dsn = ctx.settings.platform_db_admin_dsn
    if dsn is None:
        raise ConfigError("platform_db_admin_dsn is not set: cannot reach tenant databases")
    database = SharedServerAccess(dsn.get_secret_value())
    if isinstance(platform, BucketStorage) and platform.keeps_bucket(spec):
        return app_storage.BucketBackupAccess(database, ctx.settings)
    return database


def _on_the_platform(ctx: Context, platform: Platform, spec: TenantSpec) -> BackupAccess:
    """What the platform itself reaches (``DataAccess``)."""
    if isinstance(platform, DataAccess):
        return platform.backup_access(spec)
    raise ConfigError(f"no backup access for platform {spec.platform.kind!r}")


# Where the data of each platform kind's tenants is.
DATA_ACCESS: dict[str, Callable[[Context, Platform, TenantSpec], BackupAccess]] = {
    "kubernetes": _shared_server,
    "hosts": _on_the_platform,
}


def access_for(ctx: Context, spec: TenantSpec) -> BackupAccess:
    """Where the tenant's data is (ConfigError when it cannot be reached)."""
    platform = ctx.platform(spec)
    reach = DATA_ACCESS.get(spec.platform.kind, _on_the_platform)
    return reach(ctx, platform, spec)


def nothing_to_back_up(ctx: Context, spec: TenantSpec) -> str | None:
    """Why a backup gate (before an upgrade or a delete) has nothing to save: only a
    platform that runs the app part alone (``AppOnly``) with no data reachable behind
    it; None everywhere else (a failed backup then stops the operation)."""
    platform = ctx.platform(spec)
    if not (isinstance(platform, AppOnly) and platform.app_only):
        return None
    try:
        access_for(ctx, spec)
    except ConfigError as e:
        return str(e)
    return None


def main_tables(ctx: Context, spec: TenantSpec) -> tuple[str, ...]:
    """The app's main tables (catalog), whose row counts go into the manifest."""
    return tuple(ctx.catalog.app(spec.app.name).main_tables)


def metered_source(cmd: Command, kind: str, sc: StepContext, label: str) -> Source:
    """The command as a backup source that reports its progress on ``sc``."""
    inner = CommandSource(argv=list(cmd.argv), env=dict(cmd.env), kind=kind)

    def report(n: int, seconds: float) -> None:
        message = f"{label}: {size(n)} read, {rate(n, seconds)}"
        sc.report(Event(message, host=sc.spec.slug, status="progress"))

    return MeteredSource(inner, report)


def say(sc: StepContext) -> Callable[[str], None]:
    """A reporter of plain messages of the pipeline on ``sc``."""

    def report(message: str) -> None:
        sc.report(Event(message, host=sc.spec.slug, status="info"))

    return report
