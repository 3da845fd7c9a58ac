"""Kubernetes tenants' uploads in a bucket per tenant (``settings.app_storage = "s3"``).

The Kubernetes platform creates the bucket in ``provision`` and deletes it in
``destroy`` (``platforms/kubernetes/buckets.py``), and puts its name and keys in the
chart values and the tenant's Secret. Here: the backup operations' ``BackupAccess``
whose files are the bucket (``backups/bucket_archive.py``); the database part is
``SharedServerAccess``'s.
"""

from __future__ import annotations

import fnmatch
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from osp_ops.domain.spec import TenantSpec
from osp_ops.domain.storage import tenant_bucket
from osp_ops.platforms.data import Command, DatabaseAdmin, SharedServerAccess
from osp_ops.settings import Settings

if TYPE_CHECKING:
    from osp_ops.objects.s3 import S3Store

# boto3 is imported only when a bucket is used (it costs ~25 MiB in every CLI process).


def enabled(settings: Settings, spec: TenantSpec) -> bool:
    """Whether ``spec``'s uploads live in a bucket osp-ops manages."""
    return spec.platform.kind == "kubernetes" and settings.app_storage == "s3"


def credentials(settings: Settings) -> dict[str, str]:
    """The access key pair of the tenants' buckets, as ``S3Store`` takes it."""
    from osp_ops.objects import buckets

    return buckets.tenant_credentials(settings)


def tenant_store(settings: Settings, spec: TenantSpec) -> S3Store:
    """The tenant's bucket as an ``S3Store`` (no prefix: the app writes at its root)."""
    from osp_ops.objects import buckets

    return buckets.tenant_store(settings, spec.slug)


@dataclass
class BucketBackupAccess:
    """A Kubernetes tenant's data: its database on the shared server, its bucket's files."""

    database: SharedServerAccess
    settings: Settings
    _stores: dict[str, S3Store] = field(default_factory=dict, repr=False)

    def _store(self, spec: TenantSpec) -> S3Store:
        """One S3 client per tenant for this access (a drop of many copies reuses it)."""
        if spec.slug not in self._stores:
            self._stores[spec.slug] = tenant_store(self.settings, spec)
        return self._stores[spec.slug]

    def _command(self, spec: TenantSpec, *args: str) -> Command:
        creds = credentials(self.settings)
        argv = (
            sys.executable, "-m", "osp_ops.backups.bucket_archive", *args,
            "--bucket", tenant_bucket(self.settings.app_s3_bucket_prefix, spec.slug),
            "--endpoint", self.settings.app_s3_endpoint_url or "",
            "--region", self.settings.app_s3_region,
        )  # fmt: skip
        env = {
            "AWS_ACCESS_KEY_ID": creds["access_key"],
            "AWS_SECRET_ACCESS_KEY": creds["secret_key"],
        }
        return Command(argv, env)

    def database_name(self, spec: TenantSpec) -> str:
        """``osp_<slug>``."""
        return self.database.database_name(spec)

    def dump_command(
        self, spec: TenantSpec, secrets: Mapping[str, str], *, snapshot: str | None = None
    ) -> Command:
        """pg_dump of the tenant's database on the shared server."""
        return self.database.dump_command(spec, secrets, snapshot=snapshot)

    def database_admin(self, spec: TenantSpec) -> DatabaseAdmin:
        """psql on the shared server."""
        return self.database.database_admin(spec)

    def files_command(self, spec: TenantSpec) -> Command:
        """The bucket's live objects as a tar on stdout."""
        return self._command(spec, "export")

    def files_restore_command(self, spec: TenantSpec, name: str) -> Command:
        """Extract a tar from stdin into ``.osp-ops/<name>/`` of the bucket (emptied first)."""
        return self._command(spec, "import", "--name", name)

    def switch_files(self, spec: TenantSpec, *, new: str, retired: str) -> None:
        """Live objects -> ``.osp-ops/<retired>/``, ``.osp-ops/<new>/`` -> live."""
        from osp_ops.backups import bucket_archive

        bucket_archive.switch(self._store(spec), new=new, retired=retired)

    def list_files(self, spec: TenantSpec, pattern: str) -> list[str]:
        """Staged copies whose name matches the shell ``pattern``."""
        from osp_ops.backups import bucket_archive

        found = bucket_archive.names(self._store(spec))
        return [n for n in found if fnmatch.fnmatchcase(n, pattern)]

    def drop_files(self, spec: TenantSpec, name: str) -> None:
        """Delete the staged copy ``name``."""
        from osp_ops.backups import bucket_archive

        bucket_archive.drop(self._store(spec), name)
