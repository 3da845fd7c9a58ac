"""Decidim: a container image, on hosts (``app_decidim`` role) or from ``charts/decidim``.

The chart values are computed here, pure, no I/O: from the tenant spec, its plan, the
app's catalog entry and the operator settings, plus the few facts the Kubernetes
platform looks up itself (the database server's address) and an operator overlay
(storage class, ingress class ...). No secret value ever goes into the values: the chart
reads them from the Secret named ``secrets.existingSecret``, which osp-ops creates in
the tenant's namespace. Names: see ``render/helm_values.py``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from osp_ops.apps.base import AppProfile
from osp_ops.domain.catalog import App, default_catalog
from osp_ops.domain.plans import PLANS, Plan, Resources
from osp_ops.domain.spec import TenantSpec
from osp_ops.domain.storage import tenant_bucket
from osp_ops.render.helm_values import (
    ACME_CLUSTER_ISSUER,
    LOCAL_CA_CLUSTER_ISSUER,
    SECRET_HASH_ANNOTATION,
    deep_merge,
    secret_name_for,
    tenant_labels,
)
from osp_ops.settings import Settings, TlsMode


class DecidimProfile(AppProfile):
    """Decidim: uploads in ``storage`` of the tenant's directory, written by its
    container (root's files on hosts)."""

    name = "decidim"
    files_as_app_user = False

    @property
    def personal_data(self) -> Mapping[str, tuple[str, ...]]:
        """Decidim's user table."""
        return {
            "decidim_users": (
                "email", "name", "nickname", "personal_url", "about",
                "last_sign_in_ip", "current_sign_in_ip",
            ),
        }  # fmt: skip

    def chart_values(
        self,
        spec: TenantSpec,
        *,
        version: str,
        settings: Settings,
        db_cidr: str | None,
        **options: Any,
    ) -> dict[str, Any]:
        """The ``charts/decidim`` values of ``spec`` running ``version`` (``chart_values``
        below; ``options`` are its keyword arguments, ``app`` this profile's entry unless
        given)."""
        app = options.pop("app", None) or self.app
        return chart_values(
            spec, app=app, version=version, settings=settings, db_cidr=db_cidr, **options
        )


def profile() -> DecidimProfile:
    """The entry point of ``osp_ops.apps``: Decidim with its shipped catalog entry."""
    return DecidimProfile(default_catalog().app("decidim"))


def _resources(r: Resources) -> dict[str, dict[str, str]]:
    return {
        "requests": {"cpu": r.cpu_request, "memory": r.memory_request},
        "limits": {"cpu": r.cpu_limit, "memory": r.memory_limit},
    }


def _ingress(settings: Settings) -> dict[str, Any]:
    if settings.tls_mode is TlsMode.none:
        return {"enabled": True, "tls": {"enabled": False}}
    issuer = ACME_CLUSTER_ISSUER if settings.tls_mode is TlsMode.acme else LOCAL_CA_CLUSTER_ISSUER
    return {"enabled": True, "tls": {"enabled": True}, "certManager": {"clusterIssuer": issuer}}


def chart_values(
    spec: TenantSpec,
    *,
    app: App,
    version: str,
    settings: Settings,
    db_cidr: str | None,
    secret_hash: str | None = None,
    suspended: bool = False,
    overlay: Mapping[str, Any] | None = None,
    plan: Plan | None = None,
    s3_egress: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """The chart values of ``spec`` running ``version``.

    ``db_cidr``: where the shared PostgreSQL server is (the egress NetworkPolicy opens
    it); ``None`` leaves the chart's own validation to complain. ``secret_hash``: a
    digest of the Secret's content put on pod templates so that a rotation restarts the
    pods. ``suspended``: maintenance mode (web and worker at 0, a maintenance page).
    ``overlay``: operator-wide values merged last (storage class and access modes, ingress
    class, egress CIDRs of S3/SMTP ...); it cannot change the tenant's identity or labels.
    Storage is the overlay's (a plan with several web replicas needs ReadWriteMany
    volumes or S3, and the chart says so when the overlay gives neither), except with
    ``settings.app_storage == "s3"``: then it is the tenant's own bucket, which the
    overlay cannot change, and ``s3_egress`` (``{cidr, ports}`` of the endpoint) opens
    the egress NetworkPolicy to it unless the overlay lists its own.
    """
    entry = app.version(version)
    plan = plan or PLANS[spec.plan]
    labels = tenant_labels(spec)
    pod_annotations = {SECRET_HASH_ANNOTATION: secret_hash} if secret_hash else {}
    values: dict[str, Any] = {
        "fullnameOverride": spec.app.name,
        "commonLabels": dict(labels),
        "commonAnnotations": {},
        "tenant": {"slug": spec.slug, "displayName": spec.name},
        "image": {
            "repository": app.image,
            "tag": entry.tag,
            "pullPolicy": "IfNotPresent",
        },
        "hosts": list(spec.hosts.all),
        "locales": {"default": spec.locales.default, "available": list(spec.locales.available)},
        "timeZone": spec.time_zone,
        "secrets": {"existingSecret": secret_name_for(spec.app.name)},
        "web": {
            "replicas": plan.web_replicas,
            "resources": _resources(plan.web),
            "podAnnotations": dict(pod_annotations),
        },
        "worker": {
            "replicas": plan.worker_replicas,
            "resources": _resources(plan.worker),
            "podAnnotations": dict(pod_annotations),
        },
        "migration": {"enabled": True, "command": list(app.migrate_command)},
        "quota": {
            "enabled": True,
            "requests": {
                "cpu": plan.quota_cpu,
                "memory": plan.quota_memory,
                "storage": plan.quota_storage,
            },
            "limits": {"cpu": plan.quota_limits_cpu, "memory": plan.quota_limits_memory},
            "pods": plan.quota_pods,
        },
        "limitRange": {"enabled": True},
        "networkPolicy": {
            "enabled": True,
            "egress": {"database": {"cidr": db_cidr or ""}},
        },
        "ingress": _ingress(settings),
        "maintenance": {"enabled": suspended},
        "pdb": {"enabled": plan.web_replicas > 1},
        "extraEnv": [{"name": "OSP_OPS_TENANT", "value": spec.slug}],
    }
    storage = _storage(spec, settings)
    if storage:
        values["storage"] = storage
        values["networkPolicy"]["egress"]["s3"] = [dict(e) for e in s3_egress]
    if overlay:
        values = deep_merge(values, overlay)
        # The tenant's identity is not the overlay's to change.
        values["commonLabels"] = {**dict(values.get("commonLabels") or {}), **labels}
        values["tenant"] = {"slug": spec.slug, "displayName": spec.name}
        values["secrets"] = {"existingSecret": secret_name_for(spec.app.name)}
        if storage:
            values["storage"] = storage
    return values


def _storage(spec: TenantSpec, settings: Settings) -> dict[str, Any] | None:
    """The tenant's bucket with ``app_storage: s3`` (keys in the Secret), else None."""
    if settings.app_storage != "s3":
        return None
    endpoint = settings.app_s3_pod_endpoint_url or settings.app_s3_endpoint_url or ""
    return {
        "type": "s3",
        "s3": {
            "bucket": tenant_bucket(settings.app_s3_bucket_prefix, spec.slug),
            "endpoint": endpoint,
            "region": settings.app_s3_region,
            "forcePathStyle": bool(endpoint),
        },
    }
