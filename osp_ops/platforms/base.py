"""The platform protocol: what the engine asks of a place that runs tenants, and the
capabilities a platform may have beyond it (runtime-checkable protocols the engine tests
with ``isinstance``, never by a platform's name or kind):

- ``DataAccess``: it reaches its tenants' data itself (backups, restores, drills);
- ``AppDrill``: it starts a scratch app on restored data (restore drills);
- ``AdminLogin``: it checks the administrator's password opens the running app;
- ``AppOnly``: it runs the app part only, with no data behind it (a stand-in);
- ``BucketStorage``: it keeps each tenant's uploads in a bucket of its own.

Every method is idempotent: calling it again after a crash or on a converged tenant is
safe and changes nothing that is already right. Secrets are passed in as a mapping and
must never be logged, put on a command line, or written anywhere but mode-0600 files.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from osp_ops.domain.spec import TenantSpec
from osp_ops.platforms.data import BackupAccess

# Names of the secrets every tenant has; generated once by the engine.
SECRET_NAMES = ("db_password", "admin_password", "secret_key")


@dataclass(frozen=True)
class Event:
    """Something a platform reports while it works (an Ansible task, an object applied)."""

    message: str
    host: str | None = None
    status: str = "ok"  # ok | changed | failed | skipped | info
    detail: str | None = None


class Reporter(Protocol):
    """Receives progress events; the engine logs them and shows them live."""

    def __call__(self, event: Event) -> None:
        """Record one event."""


def null_reporter(event: Event) -> None:
    """A reporter that drops events."""


@dataclass(frozen=True)
class Change:
    """What a platform call changed: counts per host or object kind."""

    changed: int = 0
    details: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Health:
    """How a tenant's instance is doing."""

    ok: bool
    url: str
    checks: Mapping[str, str] = field(default_factory=dict)
    version: str | None = None


@dataclass(frozen=True)
class TaskResult:
    """Output of a one-off task (migrations, admin bootstrap)."""

    ok: bool
    output: str = ""


class Platform(Protocol):
    """A place that runs tenants."""

    name: str

    def provision(
        self,
        *,
        spec: TenantSpec,
        secrets: Mapping[str, str],
        reporter: Reporter,
        tenant_id: str | None = None,
    ) -> Change:
        """Create what the tenant needs before the app: database, directories, TLS.

        What it creates carries the ownership mark ``osp-ops tenant <slug> <tenant_id>``;
        an existing database, role or namespace without it is refused (PlatformError),
        never adopted."""

    def deploy(
        self, *, spec: TenantSpec, version: str, secrets: Mapping[str, str], reporter: Reporter
    ) -> Change:
        """Install or switch to ``version`` of the app, configure and start it."""

    def run_task(
        self,
        *,
        spec: TenantSpec,
        version: str,
        task: str,
        secrets: Mapping[str, str],
        reporter: Reporter,
        command: Sequence[str] | None = None,
    ) -> TaskResult:
        """Run a one-off task of the app (``migrate``, ``bootstrap-admin``), or, with
        ``command``, that command of the app's ``version`` named ``task`` (an upgrade's
        one-time task from the catalog)."""

    def health(self, *, spec: TenantSpec) -> Health:
        """Check the instance answers; never raises for an unhealthy instance."""

    def suspend(self, *, spec: TenantSpec, reporter: Reporter) -> Change:
        """Stop the app and show a maintenance page."""

    def resume(self, *, spec: TenantSpec, reporter: Reporter) -> Change:
        """Start the app again after a suspend."""

    def destroy(
        self, *, spec: TenantSpec, reporter: Reporter, tenant_id: str | None = None
    ) -> Change:
        """Remove everything the tenant had on the platform, database included; only
        what carries its ownership mark (any id of its slug when ``tenant_id`` is None)."""


@runtime_checkable
class AppDrill(Protocol):
    """A platform that can start a scratch instance of the app for a restore drill."""

    def drill_app(
        self,
        *,
        spec: TenantSpec,
        database: str,
        files: str | None,
        secrets: Mapping[str, str],
        reporter: Reporter,
    ) -> TaskResult:
        """Start the app on ``database`` (and ``files``, a directory beside the live
        uploads), check it answers and the admin can log in, stop it. ``ok`` says.

        The scratch admin first gets ``secrets``' admin password, as a restore gives the
        restored admin the current one: a backup from before a rotation still drills."""


@runtime_checkable
class AdminLogin(Protocol):
    """A platform that can check the administrator's password against the running app
    (part of the health check: ``engine/health.py``)."""

    def admin_login(self, *, spec: TenantSpec, password: str) -> str | None:
        """``ok`` when ``password`` opens the app's first administrator, else what went
        wrong (a short line, never the password); None when the app has no login check."""
        ...


@runtime_checkable
class DataAccess(Protocol):
    """A platform that reaches its tenants' data itself (hosts: on each tenant's host).

    Platforms of a kind whose data lives in services osp-ops reaches directly (the
    shared PostgreSQL server of Kubernetes tenants) need not have it."""

    def backup_access(self, spec: TenantSpec) -> BackupAccess:
        """Where ``spec``'s database and files are; ConfigError when it holds none."""
        ...


@runtime_checkable
class AppOnly(Protocol):
    """A platform that runs the app part only, with no data of its own behind it.

    A backup gate (before an upgrade or a delete) that reaches no data of a tenant on
    such a platform has nothing to save, and is skipped; on any other platform it fails
    the operation."""

    app_only: bool


@runtime_checkable
class BucketStorage(Protocol):
    """A platform that keeps each tenant's uploads in a bucket of its own: created in
    ``provision``, deleted with every object in it in ``destroy``. Backups read the
    tenant's files from the bucket and restores write them back beside the live ones."""

    def keeps_bucket(self, spec: TenantSpec) -> bool:
        """Whether ``spec``'s uploads are in a bucket (the settings may keep none)."""
        ...
