"""Verify every backup of a tenant (recording each result), and repair a lost manifest.

``repair`` is an operation (it writes to the store, so it holds the tenant's lease): it
rebuilds ``manifest.json`` of a damaged backup from the copy the state DB recorded when
the backup was taken, only after that copy's MAC holds under the tenant key and every
object of the backup verifies against it end to end.
"""

from __future__ import annotations

from osp_ops.backups import (
    VerifyReport,
    backup_prefix,
    list_backups,
    manifest_key,
    verify_backup,
    verify_backups,
)
from osp_ops.backups.manifest import MANIFEST, Manifest, manifest_bytes, parse_manifest
from osp_ops.domain.errors import BackupError, NotFoundError
from osp_ops.engine.backup_access import store_for, tenant_keys
from osp_ops.engine.context import Context
from osp_ops.engine.steps import StepContext, audit
from osp_ops.engine.verification import completed_ids, record_verify
from osp_ops.store.backups import Backups


def verify_tenant(
    ctx: Context, slug: str, *, backup_id: str | None = None, sample: float = 1.0
) -> list[VerifyReport]:
    """Verify one backup or (a ``sample`` of) all; every result goes to the state DB."""
    secret, _ = tenant_keys(ctx, slug)
    store, mac = store_for(ctx), manifest_key(secret)
    completed = completed_ids(ctx, slug)
    if backup_id is not None:
        known = {i.backup_id for i in list_backups(store, slug)} | completed
        if backup_id not in known:
            raise NotFoundError(f"tenant {slug!r} has no backup {backup_id!r}")
        reports = [verify_backup(store, slug, backup_id, [secret], mac_key=mac)]
    else:
        reports = verify_backups(
            store, slug, [secret], sample=sample, mac_key=mac, completed=completed
        )
    for report in reports:
        record_verify(ctx, report)
    return reports


def recorded_manifest(ctx: Context, slug: str, backup_id: str, mac: bytes) -> Manifest:
    """The manifest the state DB recorded for the backup, its hash and MAC checked."""
    record = next((b for b in Backups(ctx.db).for_tenant(slug) if b.id == backup_id), None)
    if record is None or not record.manifest:
        raise NotFoundError(
            f"the state DB has no manifest of backup {slug}/{backup_id}: nothing to repair from"
        )
    try:
        manifest = parse_manifest(
            manifest_bytes(Manifest.model_validate(record.manifest)), mac_key=mac
        )
    except ValueError as e:
        raise BackupError(
            f"the state DB's manifest of {slug}/{backup_id} is unreadable: {e}"
        ) from e
    if manifest.tenant != slug or manifest.backup_id != backup_id:
        raise BackupError(f"the state DB's manifest of {slug}/{backup_id} describes another backup")
    return manifest


def repair_manifest(sc: StepContext) -> str:
    """Write the state DB's manifest back, if the backup's data verifies against it."""
    slug, backup_id = sc.spec.slug, str(sc.params["backup_id"])
    store = store_for(sc.ctx)
    secret, _ = tenant_keys(sc.ctx, slug)
    mac = manifest_key(secret)
    current = verify_backup(store, slug, backup_id, [secret], mac_key=mac)
    if current.ok:
        record_verify(sc.ctx, current)
        return f"{slug}/{backup_id} is not damaged: nothing to repair"
    manifest = recorded_manifest(sc.ctx, slug, backup_id, mac)
    report = verify_backup(store, slug, backup_id, [secret], mac_key=mac, manifest=manifest)
    if not report.ok:
        record_verify(sc.ctx, current)
        raise BackupError(
            f"backup {slug}/{backup_id} does not verify against the state DB's manifest, "
            f"not repaired: {'; '.join(report.problems)}"
        )
    store.put_stream(f"{backup_prefix(slug, backup_id)}/{MANIFEST}", [manifest_bytes(manifest)])
    record_verify(sc.ctx, report)
    audit(sc, "backup.repaired", {"backup": backup_id, "was": "; ".join(current.problems)})
    return f"manifest of {slug}/{backup_id} rebuilt from the state DB; the backup verifies"
