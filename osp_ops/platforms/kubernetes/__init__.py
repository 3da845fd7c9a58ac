"""The Kubernetes platform: one namespace per tenant, the app from ``charts/decidim``.

Modules: ``client.py`` (the only importer of the ``kubernetes`` client, checked by
import-linter), ``render.py`` (helm template, overlay, egress CIDRs), ``apply.py``
(server-side apply policy, namespace, deletes, waits), ``wait.py`` (Job and Deployment
readiness, pure), ``drift.py`` (live against rendered spec of the security-relevant
objects, pure), ``buckets.py`` (the tenants' upload buckets), ``platform.py``
(``KubernetesPlatform``).

How a tenant is converged (docs/platform-kubernetes.md has the whole story):

1. ``provision``: the tenant's upload bucket (``app_storage: s3``, ``buckets.py``), the
   namespace ``osp-<slug>`` (tenant labels, Pod Security ``restricted`` enforced,
   audited and warned) and the RoleBinding giving the operator its rights in it
   (``osp-ops-tenant``; cluster-wide it manages namespaces only), the tenant's role and database on the shared
   PostgreSQL server (``pgtenant``), then the Secret ``decidim-secrets`` built from the
   engine's secrets (DATABASE_URL, SECRET_KEY_BASE, ADMIN_PASSWORD).
2. ``deploy``: ``helm template`` renders the chart with values from
   ``render.helm_values`` (through a temp file; no secret is ever in them); every object
   gets the tenant labels and an ``osp-ops.io/applied-hash`` annotation. The live objects
   of the namespace carrying the tenant label are listed (one LIST per kind); objects
   whose hash matches are left alone, so a converged tenant costs zero writes. Changed
   objects are first validated by a server-side dry run (all of them, before the first
   real write), then applied with server-side apply (field manager ``osp-ops``), and
   objects no longer rendered are deleted. Then the migration Job and the Deployments
   are waited for, with progress events and a timeout.
3. ``run_task("migrate")`` waits for the version's migration Job (reruns it once when
   it failed); ``run_task("bootstrap-admin")`` runs a task Job.

Conflict policy of server-side apply (``apply.py``): osp-ops applies only fields it is the source of
truth for. It first applies without ``force``; a conflict (someone changed one of those
fields by hand, e.g. ``kubectl scale``) is reported as an event naming the other field
manager, and the apply is repeated with ``force=true``: osp-ops takes its fields back.
Fields osp-ops does not set stay with their managers. A change the API server refuses as
immutable (a Deployment selector, a Job's pod template) deletes the object (foreground),
waits until it is gone and creates it again.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from osp_ops.platforms.kubernetes.client import FIELD_MANAGER, ApiError, Kube, ResourceInfo
    from osp_ops.platforms.kubernetes.platform import KubernetesPlatform
    from osp_ops.platforms.kubernetes.render import OVERLAY_FILE, REPO_CHARTS, Rendered

# Imported on first use: the kubernetes client costs ~2 s and ~45 MiB, and processes
# that only need ``buckets`` (or nothing of Kubernetes) must not pay for it.
_EXPORTS = {
    "FIELD_MANAGER": "client",
    "ApiError": "client",
    "Kube": "client",
    "ResourceInfo": "client",
    "KubernetesPlatform": "platform",
    "OVERLAY_FILE": "render",
    "REPO_CHARTS": "render",
    "Rendered": "render",
}


def __getattr__(name: str) -> Any:
    """The package's exports, from the module that defines each (PEP 562)."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


__all__ = [
    "FIELD_MANAGER",
    "OVERLAY_FILE",
    "REPO_CHARTS",
    "ApiError",
    "Kube",
    "KubernetesPlatform",
    "Rendered",
    "ResourceInfo",
]
