"""What killed restores and drills staged, tracked until it is resumed or dropped.

A restore stages ``<db>_r<timestamp>`` and, on hosts, ``media.restore-<timestamp>``
(the names are its parameters) before it switches them in; a drill stages
``<db>_drill_<hex>`` and ``media.drill-<hex>`` and removes them when it ends. A runner
killed in between leaves them behind. They are listed with the retired data (`backup
list-retired`) unless their operation is really running, and `--confirm-drop` (or
prune, after ``restore_grace_days``) drops them; an interrupted restore whose staged
data is dropped is cancelled with it, so nobody resumes it onto nothing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from osp_ops.domain.spec import TenantSpec
from osp_ops.engine.context import Context
from osp_ops.engine.interrupted import is_interrupted
from osp_ops.platforms.data import BackupAccess, FilesAccess


def _live_ops(ctx: Context, tenant: str) -> list[str]:
    """Kinds of the tenant's operations whose runner is alive."""
    return [
        op.kind
        for op in ctx.operations.pending_for(tenant)
        if op.status == "running" and not is_interrupted(ctx, op)
    ]


def staged(ctx: Context, spec: TenantSpec, access: BackupAccess) -> list[str]:
    """Staged databases and file directories no running operation will use."""
    live = _live_ops(ctx, spec.slug)
    db = access.database_name(spec)
    patterns = []
    if "restore" not in live and "upgrade" not in live:  # an upgrade's rollback stages too
        patterns.append((rf"{re.escape(db)}_r\d{{14}}", r"media\.restore-\d{14}"))
    if "drill" not in live:
        patterns.append((rf"{re.escape(db)}_drill_[0-9a-f]{{6}}", r"media\.drill-[0-9a-f]{6}"))
    names: list[str] = []
    if not patterns:
        return names
    admin = access.database_admin(spec)
    databases = admin.list(f"{db}\\_%")
    files = access.list_files(spec, "media.*") if isinstance(access, FilesAccess) else []
    for db_pattern, files_pattern in patterns:
        names += [n for n in databases if re.fullmatch(db_pattern, n)]
        names += [n for n in files if re.fullmatch(files_pattern, n)]
    switching = _switching(ctx, spec.slug)
    return sorted(n for n in names if n not in switching)


def _switching(ctx: Context, tenant: str) -> set[str]:
    """Staged names of interrupted restores that stopped the app to switch, and of
    upgrades' rollbacks: they must be resumed (rerun the command, `upgrade recover`),
    never dropped halfway."""
    names: set[str] = set()
    for op in ctx.operations.pending_for(tenant):
        if op.kind == "restore" and any(
            s.name == "stop-app" and s.status == "done" for s in op.steps
        ):
            names |= {str(op.params.get(k)) for k in ("target_database", "files_new")}
        for step in op.steps if op.kind == "upgrade" else ():  # a rollback under way
            if step.name == "begin-rollback" and step.status == "done" and step.data:
                names |= {str(step.data.get(k)) for k in ("target_database", "files_new")}
    return names


def cancel_staging_ops(ctx: Context, spec: TenantSpec, dropped: Sequence[str]) -> list[str]:
    """Cancel the interrupted restores whose staged data was dropped; their ids."""
    cancelled = []
    for op in ctx.operations.pending_for(spec.slug):
        if op.kind != "restore" or not is_interrupted(ctx, op):
            continue
        mine = {op.params.get("target_database"), op.params.get("files_new")}
        if mine & set(dropped):
            ctx.operations.finish(op.id, "cancelled", "its staged data was dropped")
            ctx.audit.append(
                actor=ctx.actor,
                action="operation.cancel",
                tenant=spec.slug,
                details={"operation": op.id, "reason": "staged data dropped"},
            )
            cancelled.append(op.id)
    return cancelled


def drop_drill_leftovers(ctx: Context, spec: TenantSpec, access: BackupAccess) -> list[str]:
    """Drop what earlier drills killed midway left (a drill holds the tenant's lease:
    no other drill of it runs); audited."""
    db = access.database_name(spec)
    admin = access.database_admin(spec)
    names = [
        n
        for n in admin.list(f"{db}\\_drill\\_%")
        if re.fullmatch(rf"{re.escape(db)}_drill_[0-9a-f]{{6}}", n)
    ]
    for name in names:
        admin.drop(name)
    if isinstance(access, FilesAccess):
        for name in access.list_files(spec, "media.drill-*"):
            if re.fullmatch(r"media\.drill-[0-9a-f]{6}", name):
                access.drop_files(spec, name)
                names.append(name)
    for name in names:
        ctx.audit.append(
            actor=ctx.actor, action="backup.retired-dropped", tenant=spec.slug,
            details={"retired": name, "reason": "left by a killed drill"},
        )  # fmt: skip
    return names
