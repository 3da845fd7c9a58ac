"""The drill kind: restore a backup into scratch data, compare its row counts with the
manifest's, start a scratch app on it where the platform can (``AppDrill``: its admin
gets the tenant's current password first, as a restore's ``reset-admin`` gives it, so a
backup from before a rotation drills)."""

from __future__ import annotations

import secrets as _random
import time
from typing import Any

from osp_ops.domain.display import plural
from osp_ops.domain.errors import BackupError, NotFoundError, PlatformError
from osp_ops.engine import restore_staging
from osp_ops.engine.backup_access import access_for, main_tables
from osp_ops.engine.kinds.backup import verify_and_record
from osp_ops.engine.kinds.restore import extract_files, find_backup, restore_database
from osp_ops.engine.registry import Kind, Registry
from osp_ops.engine.steps import StepContext, audit
from osp_ops.platforms.base import AppDrill
from osp_ops.platforms.data import FilesAccess
from osp_ops.store.backups import Backups
from osp_ops.store.db import utcnow


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
        restore_database(sc, info.backup_id, scratch, source=spec.slug, verify_first=False)
        restored_files = files_dir is not None and extract_files(
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
        audit(sc, "backup.drill", {"backup": info.backup_id, "result": result, "rto_seconds": rto})
    if result != "ok":
        raise BackupError(f"drill of {spec.slug} backup {info.backup_id} failed: {problem}")
    app = ", scratch app answered and admin logged in" if app_check == "ok" else ""
    rows = plural(sum(found.values()), "row")
    return f"drill ok: backup {info.backup_id}, {rows}{app}, RTO {rto:.1f} s"


DRILL = Kind("drill", ("drill",), failure_phase=None)


def register(registry: Registry[Any]) -> None:
    """Add the drill kind."""
    registry.register(DRILL, {"drill": drill})
