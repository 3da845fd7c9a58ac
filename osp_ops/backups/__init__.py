"""Backups: streaming, encrypted, verified, retained, restorable.

The API the engine and CLI use (S3 support loads lazily through ``open_store``)::

    store = open_store(settings.effective_backup_url, settings)
    secret, public = new_identity()
    manifest = run_backup(source=pg_dump_source(dsn), files=DirectorySource(root),
                          store=store, tenant="nanterre", spec_yaml=text,
                          recipients=[public, settings.recovery_public_key], ...)
    list_backups(store, "nanterre")               # -> [BackupInfo], oldest first
    verify_backup(store, "nanterre", backup_id, [secret])      # -> VerifyReport
    restore_backup(store=store, tenant="nanterre", backup_id=..., identities=[secret],
                   target_dsn=new_db_dsn, target_dir=new_dir)  # -> RestoreReport
    prune(store, "nanterre", spec.backup.retention, now)       # -> PruneResult

See docs/backups.md.
"""

from osp_ops.backups.catalog import BackupInfo, cleanup, delete_backup, list_backups, read_manifest
from osp_ops.backups.manifest import Manifest, backup_prefix, manifest_key, run_backup
from osp_ops.backups.pipeline import (
    CommandSource,
    DirectorySource,
    DumpSource,
    FilesSource,
    Source,
    new_identity,
    pg_dump_source,
)
from osp_ops.backups.prune import PruneResult, prune
from osp_ops.backups.restore import RestoreReport, restore_backup
from osp_ops.backups.verify import VerifyReport, verify_backup, verify_backups
from osp_ops.domain.libpq import libpq_env
from osp_ops.objects.base import ObjectInfo, ObjectStore
from osp_ops.objects.factory import open_store
from osp_ops.objects.local import LocalStore

__all__ = [
    "BackupInfo",
    "CommandSource",
    "DirectorySource",
    "DumpSource",
    "FilesSource",
    "LocalStore",
    "Manifest",
    "ObjectInfo",
    "ObjectStore",
    "PruneResult",
    "RestoreReport",
    "Source",
    "VerifyReport",
    "backup_prefix",
    "cleanup",
    "delete_backup",
    "libpq_env",
    "list_backups",
    "manifest_key",
    "new_identity",
    "open_store",
    "pg_dump_source",
    "prune",
    "read_manifest",
    "restore_backup",
    "run_backup",
    "verify_backup",
    "verify_backups",
]
