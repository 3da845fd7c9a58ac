"""The tenants' upload buckets (``settings.app_storage = "s3"``): one per tenant.

The Kubernetes platform creates a tenant's bucket first thing in ``provision`` and
deletes it, with every object in it, last thing in ``destroy`` (its backups are in the
backup store and stay). The bucket's name and keys go into the chart values and the
tenant's Secret (``render.py``, ``platform.py``); backups read and restore its files
through ``engine/app_storage.py``. With ``app_storage: volume`` there is no bucket and
both calls change nothing.

Bucket administration itself is ``objects/buckets.py``, imported on first use only:
boto3 costs ~25 MiB in every process that loads it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from osp_ops.domain.spec import TenantSpec
from osp_ops.platforms.base import Event, Reporter
from osp_ops.settings import Settings

if TYPE_CHECKING:
    from osp_ops.objects.s3 import S3Store

HOST = "s3"  # the events' host: the tenants' S3 endpoint


class TenantBuckets:
    """Creates and deletes the tenants' buckets of ``settings`` (a no-op without S3)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @property
    def enabled(self) -> bool:
        """Whether tenants' uploads live in buckets osp-ops manages."""
        return self.settings.app_storage == "s3"

    def store(self, spec: TenantSpec) -> S3Store:
        """The tenant's bucket as an ``S3Store`` (no prefix: the app writes at its root)."""
        from osp_ops.objects import buckets

        return buckets.tenant_store(self.settings, spec.slug)

    def ensure(self, spec: TenantSpec, reporter: Reporter) -> int:
        """Create the tenant's bucket unless it exists; 1 if it was created."""
        if not self.enabled:
            return 0
        from osp_ops.objects import buckets

        store = self.store(spec)
        return _report(reporter, store, buckets.ensure_bucket(store), "created", "exists")

    def delete(self, spec: TenantSpec, reporter: Reporter) -> int:
        """Delete the tenant's bucket and every object in it; 1 if there was one."""
        if not self.enabled:
            return 0
        from osp_ops.objects import buckets

        store = self.store(spec)
        return _report(reporter, store, buckets.delete_bucket(store), "deleted", "was gone")


def _report(reporter: Reporter, store: S3Store, changed: bool, done: str, unchanged: str) -> int:
    """One event on the bucket (``done`` if ``changed``, else ``unchanged``); 1 if changed."""
    reporter(
        Event(
            f"bucket {store.bucket} {done if changed else unchanged}",
            host=HOST,
            status="changed" if changed else "ok",
        )
    )
    return int(changed)
