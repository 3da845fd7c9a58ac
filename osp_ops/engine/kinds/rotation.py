"""Tenant secret rotation: new values for some of the app's secrets, pushed to the platform.

Steps of the ``rotate-secrets`` kind, each safe to rerun after a crash:

1. ``stage-secrets``: a new value per name, stored as ``<name>.next.<operation>``
   (generated once: a rerun keeps the staged value);
2. ``switch-secrets``: the staged value becomes the secret, the staged copy goes;
3. ``provision`` / ``deploy`` / ``bootstrap-admin``: the platform converges on the new
   values (role password first, then the app's settings or Secret and a restart, then
   the administrator's password);
4. ``check-health`` (the admin logs in with the new password where the platform can
   check it), ``mark-ready``.

Backups taken before keep the old admin password: restores and drills set the current
one (``reset-admin``, ``AppDrill``).

``register`` adds the kind to a registry (``engine/registry.py``).
"""

from __future__ import annotations

from typing import Any

from osp_ops.domain.errors import Problem, SpecError
from osp_ops.engine.registry import Kind, Registry
from osp_ops.engine.steps import StepContext, audit
from osp_ops.platforms.base import SECRET_NAMES
from osp_ops.store.secrets import generate_password

KIND = "rotate-secrets"


def check_names(names: list[str]) -> list[str]:
    """The names to rotate (all app secrets when empty); SpecError for unknown ones."""
    unknown = [n for n in names if n not in SECRET_NAMES]
    if unknown:
        raise SpecError(
            [
                Problem("--name", f"unknown secret {n!r} (known: {', '.join(SECRET_NAMES)})")
                for n in unknown
            ],
            subject="command",
        )
    return sorted(set(names) or set(SECRET_NAMES))


def _names(sc: StepContext) -> list[str]:
    return check_names(list(sc.params.get("names") or []))


def _staged(sc: StepContext, name: str) -> str:
    return f"{name}.next.{sc.op.id}"


def stage_secrets(sc: StepContext) -> str:
    """Generate the new values once (kept across reruns of this operation)."""
    for name in _names(sc):
        sc.ctx.secrets.ensure(sc.spec.slug, _staged(sc, name), generate_password)
    return f"staged {', '.join(_names(sc))}"


def switch_secrets(sc: StepContext) -> str:
    """Make the staged values current (a rerun finds them switched already)."""
    present = set(sc.ctx.secrets.names(sc.spec.slug))
    switched = []
    for name in _names(sc):
        staged = _staged(sc, name)
        if staged in present:
            sc.ctx.secrets.put(sc.spec.slug, name, sc.ctx.secrets.get(sc.spec.slug, staged))
            sc.ctx.secrets.delete(sc.spec.slug, staged)
            switched.append(name)
    audit(sc, "secrets.rotated", {"names": _names(sc)})
    return f"switched {', '.join(switched)}" if switched else "already switched"


ROTATE_SECRETS = Kind(
    KIND,
    (
        "begin-update",
        "stage-secrets",
        "switch-secrets",
        "provision",
        "deploy",
        "bootstrap-admin",
        "check-health",
        "mark-ready",
    ),
)


def register(registry: Registry[Any]) -> None:
    """Add the ``rotate-secrets`` kind and its steps."""
    registry.register(
        ROTATE_SECRETS, {"stage-secrets": stage_secrets, "switch-secrets": switch_secrets}
    )
