"""The Helm values of a tenant's release, from its app's profile."""

from __future__ import annotations

from typing import Any

from osp_ops.apps.loader import default_apps
from osp_ops.domain.catalog import Catalog
from osp_ops.domain.spec import TenantSpec
from osp_ops.settings import Settings


def helm_values(
    spec: TenantSpec,
    *,
    version: str,
    catalog: Catalog,
    settings: Settings,
    db_cidr: str | None,
    **options: Any,
) -> dict[str, Any]:
    """The chart values of ``spec`` running ``version`` (``AppProfile.chart_values``);
    ``catalog`` gives the app's entry (a test may pass its own)."""
    profile = default_apps().profile(spec.app.name)
    return profile.chart_values(
        spec, version=version, settings=settings, db_cidr=db_cidr,
        app=catalog.app(spec.app.name), **options,
    )  # fmt: skip
