"""Operation kinds as data: each kind is an ordered list of named, idempotent steps."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from osp_ops.domain import deletion
from osp_ops.domain.errors import PlatformError
from osp_ops.domain.phases import Phase
from osp_ops.domain.spec import TenantSpec
from osp_ops.engine import app_storage
from osp_ops.engine.context import Context
from osp_ops.platforms.base import SECRET_NAMES, Platform, Reporter
from osp_ops.store.operations import OperationInfo
from osp_ops.store.secrets import generate_password


@dataclass
class StepContext:
    """What a step function gets."""

    ctx: Context
    op: OperationInfo
    spec: TenantSpec
    report: Reporter
    # A step named ``name@arg`` (e.g. ``deploy@0.28.4``) gets ``arg``.
    arg: str | None = None

    @property
    def platform(self) -> Platform:
        """The tenant's platform."""
        return self.ctx.platform(self.spec)

    @property
    def tenant_id(self) -> str:
        """The id in the ownership mark of what the platform creates for the tenant."""
        return self.ctx.tenants.require(self.spec.slug).tenant_id

    @property
    def params(self) -> Mapping[str, Any]:
        """The operation's parameters."""
        return self.op.params

    def secrets(self) -> dict[str, str]:
        """The app secrets the platform needs (plain; never log them). Other secrets of
        the tenant (its backup key, staged rotations) never reach a platform."""
        every = self.ctx.secrets.all_for(self.spec.slug)
        return {name: every[name] for name in SECRET_NAMES if name in every}

    @property
    def version(self) -> str:
        """The app version this step deploys: its argument, else the operation's or spec's."""
        return str(self.arg or self.params.get("version") or self.spec.app.version)


StepFn = Callable[[StepContext], str | None]


def _phase(target: Phase) -> StepFn:
    def step(sc: StepContext) -> str:
        sc.ctx.tenants.set_phase(sc.spec.slug, target)
        return f"phase {target}"

    step.__name__ = f"phase_{target}"
    return step


def generate_secrets(sc: StepContext) -> str:
    """Create each missing secret once; existing ones are kept."""
    created = [n for n in SECRET_NAMES if sc.ctx.secrets.ensure(sc.spec.slug, n, generate_password)]
    return f"created {', '.join(created)}" if created else "all present"


def provision(sc: StepContext) -> str:
    """Upload bucket (if osp-ops keeps one), then database, directories, TLS on the platform."""
    bucket = app_storage.ensure_bucket(sc.ctx.settings, sc.spec)
    change = sc.platform.provision(
        spec=sc.spec, secrets=sc.secrets(), reporter=sc.report, tenant_id=sc.tenant_id
    )
    return f"changed={change.changed}" + (f"; {bucket}" if bucket else "")


def deploy(sc: StepContext) -> str:
    """Install, configure and start the app version."""
    change = sc.platform.deploy(
        spec=sc.spec, version=sc.version, secrets=sc.secrets(), reporter=sc.report
    )
    return f"changed={change.changed}"


def _task(name: str) -> StepFn:
    def step(sc: StepContext) -> str:
        result = sc.platform.run_task(
            spec=sc.spec, version=sc.version, task=name, secrets=sc.secrets(), reporter=sc.report
        )
        if not result.ok:
            raise PlatformError(f"{name} failed for {sc.spec.slug}: {result.output[-500:]}")
        return f"{name} ok"

    step.__name__ = name
    return step


HEALTH_TIMEOUT = 180.0


def check_health(sc: StepContext) -> str:
    """Wait until the instance answers (bounded), then record its version."""
    deadline = time.monotonic() + float(sc.params.get("health_timeout", HEALTH_TIMEOUT))
    while True:
        health = sc.platform.health(spec=sc.spec)
        if health.ok:
            return f"healthy at {health.url}"
        if time.monotonic() > deadline:
            checks = ", ".join(f"{k}: {v}" for k, v in health.checks.items())
            raise PlatformError(f"{sc.spec.slug} is not healthy at {health.url} ({checks})")
        time.sleep(1.0)


def mark_ready(sc: StepContext) -> str:
    """The tenant is ready and runs the deployed version."""
    sc.ctx.tenants.set_observed_version(sc.spec.slug, sc.version)
    sc.ctx.tenants.set_phase(sc.spec.slug, Phase.ready)
    return "ready"


def record_version(sc: StepContext) -> str:
    """Record the version reached so far (an upgrade stopped midway says where it is)."""
    sc.ctx.tenants.set_observed_version(sc.spec.slug, sc.version)
    return f"running {sc.version}"


def suspend(sc: StepContext) -> str:
    """Stop the app; show the maintenance page."""
    return f"changed={sc.platform.suspend(spec=sc.spec, reporter=sc.report).changed}"


def resume(sc: StepContext) -> str:
    """Start the app again."""
    return f"changed={sc.platform.resume(spec=sc.spec, reporter=sc.report).changed}"


def destroy(sc: StepContext) -> str:
    """Remove everything the tenant had on its platform, then its upload bucket."""
    changed = sc.platform.destroy(spec=sc.spec, reporter=sc.report, tenant_id=sc.tenant_id).changed
    bucket = app_storage.delete_bucket(sc.ctx.settings, sc.spec)
    return f"changed={changed}" + (f"; {bucket}" if bucket else "")


def forget_secrets(sc: StepContext) -> str:
    """Delete the tenant's app secrets once its platform resources are gone; its backup
    key stays until its backups expire (`backup prune` destroys both)."""
    kept = deletion.KEPT_SECRETS
    return f"deleted {sc.ctx.secrets.forget(sc.spec.slug, keep=kept)} secrets; kept the backup key"


def mark_deleted(sc: StepContext) -> str:
    """The tenant is gone; its record stays, with the date its backups expire."""
    rec = sc.ctx.tenants.require(sc.spec.slug)
    expires = deletion.parse_expiry(rec.reason) if rec.phase is Phase.deleted else None
    if expires is None:  # a rerun keeps the date of the first run
        expires = deletion.expiry(datetime.now(UTC), sc.ctx.settings.deleted_backup_days)
        sc.ctx.tenants.set_observed_version(sc.spec.slug, None)
        sc.ctx.tenants.set_phase(sc.spec.slug, Phase.deleted, deletion.deleted_reason(expires))
        sc.ctx.audit.append(
            actor=sc.op.requested_by,
            action="tenant.deleted",
            tenant=sc.spec.slug,
            details={"operation": sc.op.id, "backups_expire_at": expires.isoformat()},
        )
    return f"deleted; backups kept until {expires:%Y-%m-%d %H:%M} UTC"


STEPS: dict[str, StepFn] = {
    "begin-provisioning": _phase(Phase.provisioning),
    "begin-update": _phase(Phase.updating),
    "begin-delete": _phase(Phase.deleting),
    "generate-secrets": generate_secrets,
    "provision": provision,
    "deploy": deploy,
    "migrate": _task("migrate"),
    "bootstrap-admin": _task("bootstrap-admin"),
    "check-health": check_health,
    "mark-ready": mark_ready,
    "record-version": record_version,
    "suspend": suspend,
    "mark-suspended": _phase(Phase.suspended),
    "resume": resume,
    "destroy": destroy,
    "forget-secrets": forget_secrets,
    "mark-deleted": mark_deleted,
}


@dataclass(frozen=True)
class Kind:
    """An operation kind: its steps, and the phase a failure leaves the tenant in."""

    name: str
    steps: tuple[str, ...]
    failure_phase: Phase | None = Phase.failed
    # Steps that only check or copy (a backup gate): when one fails before any other
    # step ran, the tenant keeps its phase; nothing of it was touched.
    gates: frozenset[str] = frozenset()


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind(
            "create",
            (
                "begin-provisioning",
                "generate-secrets",
                "provision",
                "deploy",
                "migrate",
                "bootstrap-admin",
                "check-health",
                "mark-ready",
            ),
        ),
        Kind(
            "apply",
            (
                "begin-update",
                "generate-secrets",
                "provision",
                "deploy",
                "migrate",
                "check-health",
                "mark-ready",
            ),
        ),
        Kind("suspend", ("suspend", "mark-suspended")),
        Kind("resume", ("resume", "check-health", "mark-ready")),
        # final-backup and forget-tls: engine/deletion.py.
        Kind(
            "delete",
            (
                "final-backup",
                "begin-delete",
                "destroy",
                "forget-tls",
                "forget-secrets",
                "mark-deleted",
            ),
            gates=frozenset({"final-backup"}),  # a failed final backup leaves the tenant
        ),
        # Steps computed per request from the catalog path (see engine/kinds/upgrade.py).
        Kind("upgrade", (), gates=frozenset({"backup-before-upgrade"})),
    )
}


def register(kind: Kind, steps: Mapping[str, StepFn]) -> None:
    """Add an operation kind and its step functions (backups, upgrades plug in here)."""
    unknown = [s for s in kind.steps if s.partition("@")[0] not in {*STEPS, *steps}]
    if unknown:
        raise ValueError(f"kind {kind.name}: steps without functions: {unknown}")
    STEPS.update(steps)
    KINDS[kind.name] = kind
