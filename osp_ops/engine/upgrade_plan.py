"""The fleet's upgrade plan: every tenant's path, and the tenants that cannot be planned.

A spec file that does not validate (an unknown version, a bad field, a host another
tenant claims) or a path the catalog refuses (a downgrade, a skipped minor) makes a
refused row for that tenant alone; every other tenant is planned as usual.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from osp_ops.domain.errors import CatalogError, SpecError
from osp_ops.engine.context import Context
from osp_ops.engine.kinds.upgrade import UpgradePlan, plan


@dataclass(frozen=True)
class Refusal:
    """A tenant left out of the plan, and why."""

    tenant: str
    error: str

    def to_json(self) -> dict[str, Any]:
        """Plain data for --json."""
        return {"tenant": self.tenant, "error": self.error}


@dataclass
class FleetPlan:
    """The plans of the tenants that can be planned, and the refusals of the others."""

    plans: list[UpgradePlan] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)

    def refusal(self, tenant: str) -> Refusal | None:
        """Why ``tenant`` was left out, or None."""
        return next((r for r in self.refused if r.tenant == tenant), None)

    def to_json(self) -> dict[str, Any]:
        """Plain data for --json."""
        return {
            "plans": [p.to_json() for p in self.plans],
            "refused": [r.to_json() for r in self.refused],
        }


def plan_fleet(ctx: Context, now: datetime) -> FleetPlan:
    """Plan every tenant that has a spec file; never raises for one tenant's problem."""
    specs, problems = ctx.specs.load_each()
    fleet = FleetPlan()
    for slug, found in problems.items():
        fleet.refused.append(Refusal(slug, str(SpecError(found))))
    for spec in specs.values():
        try:
            fleet.plans.append(plan(ctx, spec, now))
        except CatalogError as e:
            fleet.refused.append(Refusal(spec.slug, str(e)))
    fleet.refused.sort(key=lambda r: r.tenant)
    return fleet
