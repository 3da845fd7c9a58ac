"""Names, labels and annotations of a tenant's Helm release, whatever its app.

The values themselves are the app profile's (``apps/decidim.py``, through
``apps.charts.helm_values``). No secret value ever goes into them: the chart reads them
from the Secret named ``secrets.existingSecret``, which osp-ops creates in the tenant's
namespace.

Names (documented in docs/platform-kubernetes.md):

- namespace ``osp-<slug>`` (a slug like ``default`` or ``kube-system`` cannot collide
  with a system namespace);
- release name = the slug, ``fullnameOverride`` = the app name, so objects are named
  ``decidim``, ``decidim-web``, ``decidim-worker`` ... inside the tenant's namespace;
- the Secret ``decidim-secrets``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from osp_ops.domain.names import tenant_names
from osp_ops.domain.spec import TenantSpec

MANAGED_BY = "osp-ops"
TENANT_LABEL = "osp-ops.io/tenant"
# The ownership mark of a tenant namespace: ``osp-ops tenant <slug> <tenant id>``.
OWNER_ANNOTATION = "osp-ops.io/owner"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
SECRET_HASH_ANNOTATION = "osp-ops.io/secret-hash"  # noqa: S105 - a name, not a secret
ACME_CLUSTER_ISSUER = "osp-ops-acme"
LOCAL_CA_CLUSTER_ISSUER = "osp-ops-local-ca"


def namespace_for(slug: str) -> str:
    """The tenant's namespace (``domain.names``)."""
    return tenant_names(slug).namespace


def secret_name_for(app: str) -> str:
    """Name of the Secret holding the app's secret environment."""
    return f"{app}-secrets"


def tenant_labels(spec: TenantSpec) -> dict[str, str]:
    """Labels every object of the tenant carries (namespace included)."""
    return {MANAGED_BY_LABEL: MANAGED_BY, TENANT_LABEL: spec.slug}


def deep_merge(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``overlay`` merged in: mappings recursively, anything else replaced."""
    out: dict[str, Any] = dict(base)
    for key, value in overlay.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out
