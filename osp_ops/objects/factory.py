"""``open_store``: the store for the operator's ``backup_url``.

- ``file:///var/lib/osp-ops/backups`` -> :class:`~osp_ops.objects.local.LocalStore`
- ``s3://bucket/prefix`` -> :class:`~osp_ops.objects.s3.S3Store` (endpoint and region from
  settings); boto3 is imported only then.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse

from osp_ops.domain.errors import ConfigError
from osp_ops.objects.base import ObjectStore
from osp_ops.objects.local import LocalStore

if TYPE_CHECKING:
    from osp_ops.settings import Settings


def open_store(url: str, settings: Settings | None = None) -> ObjectStore:
    """The store for ``file:///dir`` or ``s3://bucket[/prefix]``."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise ConfigError(f"backup URL {url!r}: file URLs take no host (file:///dir)")
        return LocalStore(Path(unquote(parsed.path)))
    if parsed.scheme == "s3":
        from osp_ops.objects.s3 import S3Store

        if not parsed.netloc:
            raise ConfigError(f"backup URL {url!r} names no bucket (s3://bucket/prefix)")
        return S3Store(
            bucket=parsed.netloc,
            prefix=parsed.path.strip("/"),
            endpoint_url=settings.s3_endpoint_url if settings else None,
            region=settings.s3_region if settings else "us-east-1",
            object_lock_days=settings.s3_object_lock_days if settings else 0,
        )
    raise ConfigError(f"backup URL {url!r}: use file:///dir or s3://bucket/prefix")
