"""The tenant lifecycle: create, apply, suspend, resume, delete (and the upgrade's
phase steps): secrets, provision, deploy, tasks, health, phases; the delete's final
backup and certificate removal (the rest of deletion: ``engine/deletion.py``)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from osp_ops.domain import deletion
from osp_ops.domain.errors import OspOpsError, PlatformError
from osp_ops.domain.phases import Phase
from osp_ops.engine.backup_access import nothing_to_back_up
from osp_ops.engine.deletion import NO_FINAL_BACKUP_HINT
from osp_ops.engine.health import with_admin_login
from osp_ops.engine.kinds.backup import gate_backup
from osp_ops.engine.registry import Kind, Registry, StepResult
from osp_ops.engine.steps import StepContext, StepFn, audit
from osp_ops.platforms import tls
from osp_ops.platforms.base import SECRET_NAMES
from osp_ops.store.secrets import generate_password


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
    """Database, directories, TLS, the upload bucket where it keeps one: the platform's."""
    change = sc.platform.provision(
        spec=sc.spec, secrets=sc.secrets(), reporter=sc.report, tenant_id=sc.tenant_id
    )
    return f"changed={change.changed}"


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
    """Wait until the instance answers and its admin logs in with the current password
    where the platform can check it (bounded), then record its version."""
    deadline = time.monotonic() + float(sc.params.get("health_timeout", HEALTH_TIMEOUT))
    password = sc.secrets().get("admin_password")
    while True:
        health = sc.platform.health(spec=sc.spec)
        if password is not None:
            health = with_admin_login(health, sc.platform, sc.spec, password)
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
    """Remove everything the tenant had on its platform (its upload bucket included)."""
    changed = sc.platform.destroy(spec=sc.spec, reporter=sc.report, tenant_id=sc.tenant_id).changed
    return f"changed={changed}"


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
        audit(sc, "tenant.deleted", {"backups_expire_at": expires.isoformat()})
    return f"deleted; backups kept until {expires:%Y-%m-%d %H:%M} UTC"


def final_backup(sc: StepContext) -> StepResult | str:
    """A verified backup of the tenant before anything of it is removed."""
    if sc.params.get("final_backup") is False:
        reason = str(sc.params.get("no_final_backup_reason") or "")
        audit(sc, "tenant.delete-without-final-backup", {"reason": reason})
        return f"skipped (--no-final-backup): {reason}"
    rec = sc.ctx.tenants.require(sc.spec.slug)
    if rec.observed_version is None and rec.phase in (Phase.requested, Phase.provisioning):
        return "skipped: the tenant never ran, it has no data"
    skip = nothing_to_back_up(sc.ctx, sc.spec)  # an app-only platform: no data behind it
    if skip is not None:
        return f"skipped: {skip}"
    try:
        return gate_backup(sc, before="delete")
    except OspOpsError as e:
        if e.hint is None:
            e.hint = NO_FINAL_BACKUP_HINT
        raise


def forget_tls(sc: StepContext) -> str:
    """The tenant's certificate and private key leave the local CA's directory."""
    removed = tls.forget_cert(sc.ctx.settings, slug=sc.spec.slug)
    return f"removed {', '.join(removed)}" if removed else "no certificate of the local CA"


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
    "final-backup": final_backup,
    "forget-tls": forget_tls,
}

CREATE = Kind(
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
    entry_phase=Phase.provisioning,
)
APPLY = Kind(
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
    entry_phase=Phase.updating,
)
SUSPEND = Kind("suspend", ("suspend", "mark-suspended"), entry_phase=Phase.suspended)
RESUME = Kind("resume", ("resume", "check-health", "mark-ready"), entry_phase=Phase.ready)
DELETE = Kind(
    "delete",
    ("final-backup", "begin-delete", "destroy", "forget-tls", "forget-secrets", "mark-deleted"),
    gates=frozenset({"final-backup"}),  # a failed final backup leaves the tenant
    entry_phase=Phase.deleting,
)


def register(registry: Registry[Any]) -> None:
    """Add the lifecycle kinds and their steps."""
    for kind in (CREATE, APPLY, SUSPEND, RESUME, DELETE):
        registry.register(kind, {})
    registry.register(None, STEPS)
