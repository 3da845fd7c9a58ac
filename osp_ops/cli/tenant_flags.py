"""The spec `osp-ops tenant create` builds from its flags, and which defaults it chose."""

from __future__ import annotations

from collections.abc import Mapping

from osp_ops.apps.loader import default_apps
from osp_ops.domain.catalog import Catalog
from osp_ops.domain.spec import TenantSpec, validate_spec


def spec_from_flags(
    base_domain: str,
    default_platform: str,
    slug: str,
    flags: Mapping[str, object],
    catalog: Catalog,
) -> TenantSpec:
    """The spec `tenant create` builds from its flags, each missing one a default."""
    app_name = str(flags.get("app") or default_apps().default_name)
    known = catalog.apps.get(app_name)
    version = str(flags.get("version") or (known.latest.version if known else ""))
    host = str(flags.get("host") or f"{slug}.{base_domain}")
    locale = str(flags.get("locale") or "fr")
    platform_kind = str(flags.get("platform") or default_platform)
    platform: dict[str, object] = {"kind": platform_kind}
    if flags.get("target") and platform_kind == "hosts":
        platform["target"] = flags["target"]
    data: dict[str, object] = {
        "slug": slug,
        "name": flags.get("name") or slug.replace("-", " ").title(),
        "app": {"name": app_name, "version": version},
        "hosts": {"primary": host, "aliases": flags.get("alias") or []},
        "locales": {"default": locale, "available": sorted({locale, "en"})},
        "admin": {
            "name": flags.get("admin_name") or "Administrator",
            "email": flags.get("admin_email") or f"admin@{slug}.example.org",
        },
        "platform": platform,
        "plan": flags.get("plan") or "small",
    }
    return validate_spec(data, source=f"tenant create {slug}", catalog=catalog)


def defaults_used(spec: TenantSpec, flags: Mapping[str, object]) -> list[tuple[str, str, str]]:
    """(what, value, option) of each value `tenant create` chose because no flag gave it."""
    used = []
    if "app" not in flags:
        used.append(("app", f"{spec.app.name} {spec.app.version}", "--app and --version"))
    elif "version" not in flags:
        used.append((f"{spec.app.name} version", f"{spec.app.version} (the newest)", "--version"))
    if "name" not in flags:
        used.append(("name", repr(spec.name), "--name"))
    if "host" not in flags:
        used.append(("host", spec.hosts.primary, "--host"))
    if "admin_name" not in flags or "admin_email" not in flags:
        admin = f"{spec.admin.name} <{spec.admin.email}>"
        used.append(("admin", admin, "--admin-name and --admin-email"))
    if "locale" not in flags:
        used.append(("locale", spec.locales.default, "--locale"))
    if "platform" not in flags:
        used.append(("platform", spec.platform.kind, "--platform or default_platform"))
    if "plan" not in flags:
        used.append(("plan", str(spec.plan), "--plan"))
    return used
