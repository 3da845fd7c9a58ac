"""A tenant's health as osp-ops judges it: the platform's probe, then the admin login.

An instance that answers but refuses the password of ``tenant credentials`` is not
healthy: the operator could not get in, nor could a drill or a restore prove anything.
The login is checked where the platform can (``AdminLogin``) and the app has a login
check; elsewhere the platform's probe is the whole health.
"""

from __future__ import annotations

import dataclasses

from osp_ops.domain.errors import NotFoundError
from osp_ops.domain.spec import TenantSpec
from osp_ops.engine.context import Context
from osp_ops.platforms.base import AdminLogin, Health, Platform

ADMIN_CHECK = "admin login"


def with_admin_login(health: Health, platform: Platform, spec: TenantSpec, password: str) -> Health:
    """``health`` with the admin login added (not ok when refused); unchanged when the
    instance does not answer or the login cannot be checked here."""
    if not health.ok or not isinstance(platform, AdminLogin):
        return health
    result = platform.admin_login(spec=spec, password=password)
    if result is None:
        return health
    checks = {**health.checks, ADMIN_CHECK: result}
    return dataclasses.replace(health, ok=result == "ok", checks=checks)


def tenant_health(ctx: Context, spec: TenantSpec) -> Health:
    """The platform's health of ``spec``, the admin login included (``tenant show``)."""
    platform = ctx.platform(spec)
    health = platform.health(spec=spec)
    try:
        password = ctx.secrets.get(spec.slug, "admin_password")
    except NotFoundError:
        return health  # no secrets (yet): nothing to log in with
    return with_admin_login(health, platform, spec, password)
