"""Builders of the tenant specs and tenants the tests use, in one place.

- ``spec_data(slug, ...)``: a valid spec mapping; every field derives from the slug
  unless given (``Slug``, ``<slug>.example.org``, ``Admin <admin@<slug>.example.org>``,
  Decidim 0.27.7). Give ``platform=`` for a ``platform:`` block; other keywords replace
  whole top-level keys.
- ``make_spec(slug, ...)``: the same, validated into a ``TenantSpec``.
- ``hosts_spec(slug)``: OpenSlides 3.3 at ``<slug>.localhost`` on the hosts platform.
- ``kube_spec(slug)``: Decidim 0.28.4 at ``participer.<slug>.example.org`` on
  Kubernetes, locales fr and en (the k8s tests' tenant).
- ``fake_context(tmp_path)``: an engine context on the fake platform, no retry delay.
- ``converge(ctx, spec)``: writes the spec file and runs the create or apply it asks for.
- ``SPEC_YAML``: the spec text the backup pipeline tests store with a backup.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from osp_ops.domain.spec import TenantSpec, validate_spec
from osp_ops.engine.api import request_converge
from osp_ops.engine.context import Context, build_context
from osp_ops.engine.runner import run_operation
from osp_ops.platforms.base import Platform
from osp_ops.platforms.fake import FakePlatform
from osp_ops.settings import Settings
from osp_ops.store.operations import OperationInfo

# The version a spec gets when the test names none.
DEFAULT_VERSIONS = {"decidim": "0.27.7", "openslides": "3.3"}

SPEC_YAML = "slug: nanterre\nname: Ville de Nanterre\napp: {name: decidim, version: '0.28'}\n"


def spec_data(
    slug: str = "lyon",
    *,
    app: str = "decidim",
    version: str | None = None,
    name: str | None = None,
    host: str | None = None,
    admin_name: str = "Admin",
    admin_email: str | None = None,
    platform: str | None = None,
    target: str | None = None,
    **keys: Any,
) -> dict[str, Any]:
    """A valid tenant spec mapping; ``keys`` replace whole top-level keys."""
    data: dict[str, Any] = {
        "slug": slug,
        "name": slug.title() if name is None else name,
        "app": {"name": app, "version": version or DEFAULT_VERSIONS[app]},
        "hosts": {"primary": host or f"{slug}.example.org"},
        "admin": {"name": admin_name, "email": admin_email or f"admin@{slug}.example.org"},
    }
    if platform is not None:
        data["platform"] = {"kind": platform} | ({"target": target} if target else {})
    data.update(keys)
    return data


def make_spec(slug: str = "lyon", *, source: str = "<spec>", **fields: Any) -> TenantSpec:
    """``spec_data(slug, **fields)`` validated (a SpecError names ``source``)."""
    return validate_spec(spec_data(slug, **fields), source=source)


def hosts_spec(slug: str, *, target: str = "localhost") -> TenantSpec:
    """A tenant running OpenSlides 3.3 at <slug>.localhost on the hosts platform."""
    return make_spec(
        slug,
        app="openslides",
        name=f"Ville de {slug.capitalize()}",
        host=f"{slug}.localhost",
        admin_name=f"Admin {slug.capitalize()}",
        platform="hosts",
        target=target,
    )


def kube_spec(slug: str, **keys: Any) -> TenantSpec:
    """Decidim 0.28.4 on Kubernetes; ``keys`` replace whole top-level keys."""
    data = spec_data(
        slug,
        version="0.28.4",
        host=f"participer.{slug}.example.org",
        platform="kubernetes",
        locales={"default": "fr", "available": ["fr", "en"]},
    )
    data.update(keys)
    return validate_spec(data, source=f"test {slug}")


def fake_context(tmp_path: Path, *, platform: Platform | None = None, **settings: Any) -> Context:
    """An engine context in ``tmp_path`` (data/, tenants/) whose every tenant runs on one
    platform (a new ``FakePlatform`` unless given); ``settings`` override the rest."""
    app_platform = FakePlatform() if platform is None else platform
    options: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "tenants_dir": tmp_path / "tenants",
        "retry_base_delay": 0,
    } | settings
    return build_context(
        Settings(**options), actor="test", platform_factory=lambda _spec: app_platform
    )


def converge(ctx: Context, spec: TenantSpec) -> OperationInfo:
    """Write the spec file, then request and run what it asks for (create, apply, upgrade)."""
    ctx.specs.write(spec)
    op, _ = request_converge(ctx, spec)
    return run_operation(ctx, op.id)
