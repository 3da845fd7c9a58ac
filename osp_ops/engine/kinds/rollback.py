"""The automatic rollback of an upgrade: the tenant back on the version it ran, with the
data of the upgrade's backup gate, proven healthy.

The runner starts it (``Kind.undo``, ``engine/undo.py``) when a step after the gate
fails, or when an upgrade resumes after its runner died past its point of no return
(``blame``). Its steps are appended to the upgrade operation, after the steps it skips:

    begin-rollback              tenant ``rolling-back``; the names below (step data)
    rollback-stop-app           maintenance page on, app stopped
    rollback-restore-database   the gate's backup into a NEW database ``<db>_r<ts>``
    rollback-restore-files      its uploaded files beside the live ones (hosts)
    rollback-switch-database    live -> ``<db>_old_<ts>`` (kept), restored -> live
    rollback-switch-files       media -> ``media.old-<ts>`` (kept), restored -> media
    rollback-deploy             the previous version (its virtualenv or image is still there)
    rollback-start-app          app started, maintenance page off
    rollback-check-health       healthy, and reporting the previous version
    mark-rolled-back            tenant ``ready`` on the previous version, reason recorded

Nothing is dropped: the database and files the failed upgrade touched are retired as a
restore retires them (``backup list-retired``; prune drops them after
``restore_grace_days``), and the new version's virtualenv or image stays. The restore
steps are the restore kind's (``engine/kinds/restore.py``), run on the tenant as it was
before the upgrade (its spec at the previous version).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from osp_ops.domain.error_text import one_line
from osp_ops.domain.errors import IllegalTransitionError, PlatformError
from osp_ops.domain.phases import Phase
from osp_ops.domain.spec import TenantSpec
from osp_ops.engine.backup_access import access_for
from osp_ops.engine.context import Context
from osp_ops.engine.kinds import lifecycle
from osp_ops.engine.kinds import restore as restores
from osp_ops.engine.registry import StepResult, Undo
from osp_ops.engine.steps import StepContext, StepFn, audit
from osp_ops.engine.undo import started
from osp_ops.platforms.data import FilesAccess
from osp_ops.store.operations import OperationInfo

GATE = "backup-before-upgrade"
# Steps that change nothing of the tenant's app or data: an upgrade cut off in one of
# them goes on when it resumes.
UNTOUCHED = frozenset({GATE, "begin-update"})

ROLLBACK_STEPS = (
    "begin-rollback",
    "rollback-stop-app",
    "rollback-restore-database",
    "rollback-restore-files",
    "rollback-switch-database",
    "rollback-switch-files",
    "rollback-deploy",
    "rollback-start-app",
    "rollback-check-health",
    "mark-rolled-back",
)


def blame(steps: Sequence[tuple[str, str]]) -> str | None:
    """The step an upgrade must roll back for, given each step's (name, status), or None
    when it may go on: nothing was touched yet (only the gate or ``begin-update`` ran),
    or the last version's health check passed (only bookkeeping is left).

    The blamed step is the failed or cut-off one, else the next one that did not run
    (the runner died between two steps)."""
    names = [name for name, _ in steps]
    checks = [i for i, name in enumerate(names) if name.startswith("check-health@")]
    if checks and steps[checks[-1]][1] == "done":
        return None
    touched = [
        i for i, (name, status) in enumerate(steps) if name not in UNTOUCHED and status != "pending"
    ]
    if not touched:
        return None
    for name, status in steps:
        if status in ("failed", "running"):
            return name
    after = touched[-1] + 1
    return names[after] if after < len(names) else names[touched[-1]]


UNDO = Undo(
    steps=ROLLBACK_STEPS,
    blame=blame,
    hint="`osp-ops upgrade recover {tenant}` retries the rollback (the maintenance page "
    "stays up until it succeeds); `osp-ops op show {operation}` shows what failed",
    contain="rollback-stop-app",
)


def _failed(sc: StepContext) -> tuple[str, str]:
    """(name, error) of the upgrade step the rollback is for."""
    op = sc.ctx.operations.get(sc.op.id)
    for step in op.steps:
        if step.status == "failed" and step.name not in ROLLBACK_STEPS:
            return step.name, step.error or "failed"
    raise PlatformError(f"operation {op.id} records no failed step to roll back for")


def begin_rollback(sc: StepContext) -> StepResult:
    """Tenant ``rolling-back``; the backup and the names of the restore, in the step data."""
    failed, error = _failed(sc)
    origin = str(sc.params["from"])
    backup_id = (sc.data_of(GATE) or {}).get("backup_id")
    data: dict[str, Any] = {"from": origin, "failed_step": failed, "error": error}
    data["backup_id"] = backup_id
    if backup_id:
        now = datetime.now(UTC)
        names = restores.restore_params(sc.ctx, _spec_before(sc), str(backup_id), now)
        data |= {k: v for k, v in names.items() if k not in ("backup_id", "was_suspended")}
    else:  # an app-only platform with no data behind it: its gate said why
        steps = sc.ctx.operations.get(sc.op.id).steps  # as recorded now, not at the start
        gate = next((s for s in steps if s.name == GATE), None)
        data["no_backup"] = (gate.output if gate else None) or "the upgrade took no backup"
    reason = f"rolling back to {origin}: {failed} failed (operation {sc.op.id})"
    sc.ctx.tenants.set_phase(sc.spec.slug, Phase.rolling_back, reason, force=True)
    audit(sc, "upgrade.rolling-back", {"failed_step": failed, "to": origin, "backup": backup_id})
    restore = f"backup {backup_id} into {data.get('target_database')}" if backup_id else "no backup"
    return StepResult(f"rolling back to {origin} after {failed} failed ({restore})", data)


def _rollback(sc: StepContext) -> Mapping[str, Any]:
    data = sc.data_of("begin-rollback")
    if data is None:
        raise PlatformError(f"operation {sc.op.id} has no begin-rollback record")
    return data


def _spec_before(sc: StepContext) -> TenantSpec:
    """The tenant's spec at the version it ran before the upgrade."""
    origin = str(sc.params["from"])
    return sc.spec.model_copy(update={"app": sc.spec.app.model_copy(update={"version": origin})})


def as_before(sc: StepContext) -> StepContext:
    """The step context of the tenant as it was: its spec at the previous version, and
    the restore's parameters (backup, names) from ``begin-rollback``."""
    data = _rollback(sc)
    params = {**sc.op.params, **data, "version": data["from"], "was_suspended": False}
    op = dataclasses.replace(sc.op, params=params)
    return dataclasses.replace(sc, op=op, spec=_spec_before(sc), arg=None)


def _with_backup(fn: StepFn, what: str) -> StepFn:
    """A restore step, run when the gate took a backup (else nothing to put back)."""

    def step(sc: StepContext) -> str:
        before = as_before(sc)
        if not before.params.get("backup_id"):
            return f"no {what}: {before.params.get('no_backup')}"
        out = fn(before)
        return str(out) if out is not None else "done"

    step.__name__ = f"rollback_{fn.__name__}"
    return step


def rollback_switch_database(sc: StepContext) -> str:
    """The restore's switch; when the restored copy is gone and nothing was switched yet
    (a failed rollback waited while `backup restore --confirm-drop` or prune dropped what
    it had staged), the backup is restored again first."""
    before = as_before(sc)
    if not before.params.get("backup_id"):
        return f"no database to switch: {before.params.get('no_backup')}"
    admin = access_for(sc.ctx, before.spec).database_admin(before.spec)
    present = set(admin.list("%"))
    again = ""
    if (
        not {str(before.params["target_database"]), str(before.params["retired_database"])}
        & present
    ):
        again = restores.restore_to_new_database(before) + "; "
    return again + restores.switch_database(before)


def rollback_switch_files(sc: StepContext) -> str:
    """The restore's switch of the files; restored again first when what the rollback
    staged was dropped before it switched (as for the database)."""
    before = as_before(sc)
    if not before.params.get("backup_id"):
        return f"no files to switch: {before.params.get('no_backup')}"
    access = access_for(sc.ctx, before.spec)
    new, retired = before.params.get("files_new"), before.params.get("files_retired")
    again = ""
    if new and retired and isinstance(access, FilesAccess):
        present = set(access.list_files(before.spec, "media.*"))
        if not {str(new), str(retired)} & present:
            again = restores.restore_files(before) + "; "
    return again + restores.switch_files(before)


def _as_before(fn: StepFn) -> StepFn:
    def step(sc: StepContext) -> Any:
        return fn(as_before(sc))

    step.__name__ = f"rollback_{fn.__name__}"
    return step


def rollback_check_health(sc: StepContext) -> str:
    """Healthy (bounded wait), and the app reports the previous version where it says."""
    before = as_before(sc)
    out = lifecycle.check_health(before)
    reported = before.platform.health(spec=before.spec).version
    if reported is not None and reported != before.version:
        raise PlatformError(
            f"{sc.spec.slug} reports version {reported} after the rollback to {before.version}"
        )
    return out + (f", version {reported}" if reported else "")


def mark_rolled_back(sc: StepContext) -> StepResult:
    """The tenant is ready on the previous version; the reason says what failed."""
    data = _rollback(sc)
    origin = str(data["from"])
    sc.ctx.tenants.set_observed_version(sc.spec.slug, origin)
    reason = (
        f"upgrade to {sc.spec.app.version} rolled back to {origin}: {data['failed_step']} "
        f"failed: {one_line(str(data['error']))[:300]} (operation {sc.op.id})"
    )
    sc.ctx.tenants.set_phase(sc.spec.slug, Phase.ready, reason, force=True)
    details = {k: data.get(k) for k in ("failed_step", "backup_id", "retired_database")}
    audit(sc, "upgrade.rolled-back", {"to": origin, **details})
    return StepResult(f"ready on {origin}", {"version": origin, **details})


STEPS: dict[str, StepFn] = {
    "begin-rollback": begin_rollback,
    "rollback-stop-app": _as_before(restores.stop_app),
    "rollback-restore-database": _with_backup(restores.restore_to_new_database, "database"),
    "rollback-restore-files": _with_backup(restores.restore_files, "files"),
    "rollback-switch-database": rollback_switch_database,
    "rollback-switch-files": rollback_switch_files,
    "rollback-deploy": _as_before(lifecycle.deploy),
    "rollback-start-app": _as_before(restores.start_app),
    "rollback-check-health": rollback_check_health,
    "mark-rolled-back": mark_rolled_back,
}


# -- recover ---------------------------------------------------------------------------


def last_upgrade(ctx: Context, slug: str) -> OperationInfo | None:
    """The tenant's newest upgrade operation."""
    ops = ctx.operations.recent(tenant=slug, kind="upgrade", limit=1)
    return ops[0] if ops else None


def state(op: OperationInfo, *, interrupted: bool = False) -> str:
    """The upgrade's state, in the spirit of Frappe Press: ``upgrading``,
    ``rolling-back``, ``rolled-back``, ``succeeded``, ``failed`` (the rollback failed
    too, or the gate: nothing was touched), ``interrupted``, ``queued``, ``cancelled``."""
    rolling = started(UNDO, op.steps)
    if op.status == "running":
        if interrupted:
            return "interrupted"
        return "rolling-back" if rolling else "upgrading"
    return op.status


def rolled_back_before(ctx: Context, slug: str, target: str) -> OperationInfo | None:
    """The tenant's last upgrade when it was to ``target`` and was rolled back."""
    op = last_upgrade(ctx, slug)
    if op is None or op.status != "rolled-back":
        return None
    return op if op.params.get("spec", {}).get("app", {}).get("version") == target else None


def recoverable(ctx: Context, slug: str, *, interrupted: bool) -> OperationInfo:
    """The upgrade ``upgrade recover`` resumes: the newest one, when its rollback failed
    or its runner died (requeued when it failed). IllegalTransitionError otherwise."""
    op = last_upgrade(ctx, slug)
    if op is None:
        raise IllegalTransitionError(f"tenant {slug!r} has no upgrade to recover")
    if op.status == "running" and interrupted:
        return op
    rolling = started(UNDO, op.steps)
    if op.status == "failed" and (rolling or blame([(s.name, s.status) for s in op.steps])):
        ctx.operations.requeue(op.id)
        return ctx.operations.get(op.id)
    what = {
        "succeeded": "succeeded",
        "rolled-back": "was rolled back already",
        "running": "is running",
        "queued": "is queued",
        "cancelled": "was cancelled",
        "failed": "failed before it touched anything (its backup gate)",
    }.get(op.status, op.status)
    raise IllegalTransitionError(
        f"the last upgrade of {slug!r} ({op.id}) {what}: nothing to recover",
        hint=f"`osp-ops upgrade run {slug}` starts a new upgrade"
        if op.status in ("rolled-back", "failed", "cancelled")
        else f"`osp-ops op show {op.id}`",
    )


def refuse_after_failed_rollback(ctx: Context, slug: str) -> None:
    """IllegalTransitionError when the tenant's last upgrade failed and so did its
    rollback: no new upgrade goes on top of a half-rolled-back tenant."""
    op = last_upgrade(ctx, slug)
    if op is None or op.status != "failed":
        return
    if started(UNDO, op.steps):
        raise IllegalTransitionError(
            f"the last upgrade of {slug!r} ({op.id}) failed and so did its rollback: "
            "the tenant stays under its maintenance page",
            hint=f"`osp-ops upgrade recover {slug}` retries the rollback",
        )
