"""Upgrades: walk the catalog's path one allowed version at a time.

An upgrade is an operation whose steps are computed from the path: for each version,
deploy it, run its migrations and check health. A step after the backup gate that
fails rolls the upgrade back to the version the tenant ran (``engine/kinds/rollback.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from osp_ops.domain.catalog import App, UpgradeTask
from osp_ops.domain.maintenance import is_open, next_start
from osp_ops.domain.phases import Phase
from osp_ops.domain.spec import TenantSpec
from osp_ops.engine.context import Context
from osp_ops.engine.kinds import rollback
from osp_ops.engine.registry import Kind, Registry
from osp_ops.engine.upgrade_tasks import run_upgrade_tasks


@dataclass(frozen=True)
class Hop:
    """One step of an upgrade path: from a version to the next, and its one-time tasks."""

    origin: str
    version: str
    tasks: tuple[UpgradeTask, ...]

    def to_json(self) -> dict[str, Any]:
        """Plain data for --json."""
        return {
            "from": self.origin,
            "to": self.version,
            "tasks": [
                {
                    "command": list(t.command),
                    "version": t.version,
                    "rerunnable": t.rerunnable,
                    "description": t.description,
                }
                for t in self.tasks
            ],
        }


def hops(app: App, current: str, path: tuple[str, ...]) -> tuple[Hop, ...]:
    """The hops of ``path`` (which excludes ``current``), each with its tasks."""
    origins = (current, *path)[: len(path)]
    return tuple(
        Hop(origin, version, app.hop_tasks(origin, version))
        for origin, version in zip(origins, path, strict=True)
    )


@dataclass(frozen=True)
class UpgradePlan:
    """What an upgrade of one tenant would do."""

    tenant: str
    app: str
    current: str | None
    target: str
    path: tuple[str, ...]
    window_open: bool
    next_window: datetime
    hops: tuple[Hop, ...] = ()

    @property
    def needed(self) -> bool:
        """True when the running version differs from the spec's."""
        return bool(self.path)

    def to_json(self) -> dict[str, Any]:
        """Plain data for --json."""
        return {
            "tenant": self.tenant,
            "app": self.app,
            "current": self.current,
            "target": self.target,
            "path": list(self.path),
            "hops": [h.to_json() for h in self.hops],
            "window_open": self.window_open,
            "next_window": self.next_window.isoformat(),
        }


def plan(ctx: Context, spec: TenantSpec, now: datetime) -> UpgradePlan:
    """The upgrade path of a tenant from its running version to its spec's version.

    Raises CatalogError when the catalog allows no path (downgrade or skipped minor).
    """
    rec = ctx.tenants.get(spec.slug)
    current = rec.observed_version if rec else None
    app = ctx.catalog.app(spec.app.name)
    path = tuple(app.upgrade_path(current, spec.app.version)) if current else ()
    window = spec.maintenance_window
    return UpgradePlan(
        tenant=spec.slug,
        app=spec.app.name,
        current=current,
        target=spec.app.version,
        path=path,
        window_open=is_open(window, spec.time_zone, now),
        next_window=next_start(window, spec.time_zone, now),
        hops=hops(app, current, path) if current else (),
    )


def upgrade_steps(
    path: tuple[str, ...], *, backup_first: bool, with_tasks: frozenset[str] = frozenset()
) -> tuple[str, ...]:
    """Steps of an upgrade along ``path``; the hops to the versions in ``with_tasks`` run
    their one-time tasks after their migrations (engine/upgrade_tasks.py)."""
    # The backup gate comes first: when it fails, nothing of the tenant has changed
    # (its phase included; see Kind.gates).
    steps: list[str] = ["backup-before-upgrade"] if backup_first else []
    steps.append("begin-update")
    for version in path:
        steps += [
            f"deploy@{version}",
            f"migrate@{version}",
            *([f"upgrade-tasks@{version}"] if version in with_tasks else []),
            f"check-health@{version}",
            f"record-version@{version}",
        ]
    steps.append("mark-ready")
    return tuple(steps)


# -- registration ----------------------------------------------------------------------

# Steps computed per request from the catalog path (``upgrade_steps``); the backup gate
# ``backup-before-upgrade`` is the backup kinds' (engine/kinds/backup.py).
# A step after the gate that fails, or a resume past the point of no return, rolls the
# upgrade back (engine/kinds/rollback.py).
UPGRADE = Kind(
    "upgrade",
    (),
    gates=frozenset({"backup-before-upgrade"}),
    entry_phase=Phase.updating,
    undo=rollback.UNDO,
)


def register(registry: Registry[Any]) -> None:
    """Add the upgrade kind, its one-time tasks step (engine/upgrade_tasks.py) and its
    rollback's steps (engine/kinds/rollback.py)."""
    registry.register(UPGRADE, {"upgrade-tasks": run_upgrade_tasks, **rollback.STEPS})
