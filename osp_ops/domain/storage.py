"""Names of the buckets that hold Kubernetes tenants' uploads (``app_storage: s3``).

One bucket per tenant, ``<prefix><slug>``: Active Storage writes its blobs at the
bucket's root and has no key prefix, so tenants cannot share a bucket and still be
backed up or restored one at a time. What a restore or a drill stages lives under
``.osp-ops/<name>/`` in the tenant's own bucket (the app never lists its bucket, so the
extra keys are invisible to it).
"""

from __future__ import annotations

import re

from osp_ops.domain.errors import ConfigError
from osp_ops.domain.names import tenant_names

STAGING = ".osp-ops/"
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")


def tenant_bucket(prefix: str, slug: str) -> str:
    """The bucket of tenant ``slug``; ConfigError naming the setting if S3 refuses the name."""
    name = tenant_names(slug).bucket(prefix)
    if not _BUCKET.match(name) or "--" in name[:4]:
        raise ConfigError(
            f"app_s3_bucket_prefix: bucket name {name!r} is not a valid S3 bucket name "
            "(3-63 characters: lower-case letters, digits and dashes)"
        )
    return name


def staging_prefix(name: str) -> str:
    """Key prefix of the staged copy ``name`` (``media.restore-<ts>``, ``media.old-<ts>`` ...)."""
    if not name or "/" in name or name in (".", ".."):
        raise ConfigError(f"invalid staging name {name!r}")
    return f"{STAGING}{name}/"
