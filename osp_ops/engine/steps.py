"""What a step function gets (``StepContext``); the kinds and their steps are in
``engine/kinds/`` and ``engine/registry.py``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from osp_ops.domain.spec import TenantSpec
from osp_ops.engine.context import Context
from osp_ops.engine.registry import StepOutput
from osp_ops.platforms.base import SECRET_NAMES, Platform, Reporter
from osp_ops.store.operations import OperationInfo


@dataclass
class StepContext:
    """What a step function gets."""

    ctx: Context
    op: OperationInfo
    spec: TenantSpec
    report: Reporter
    # A step named ``name@arg`` (e.g. ``deploy@0.28.4``) gets ``arg``.
    arg: str | None = None

    @property
    def platform(self) -> Platform:
        """The tenant's platform."""
        return self.ctx.platform(self.spec)

    @property
    def tenant_id(self) -> str:
        """The id in the ownership mark of what the platform creates for the tenant."""
        return self.ctx.tenants.require(self.spec.slug).tenant_id

    @property
    def params(self) -> Mapping[str, Any]:
        """The operation's parameters."""
        return self.op.params

    def secrets(self) -> dict[str, str]:
        """The app secrets the platform needs (plain; never log them). Other secrets of
        the tenant (its backup key, staged rotations) never reach a platform."""
        every = self.ctx.secrets.all_for(self.spec.slug)
        return {name: every[name] for name in SECRET_NAMES if name in every}

    @property
    def version(self) -> str:
        """The app version this step deploys: its argument, else the operation's or spec's."""
        return str(self.arg or self.params.get("version") or self.spec.app.version)

    def data_of(self, step: str) -> Mapping[str, Any] | None:
        """The data an earlier step of this operation recorded (None when it recorded
        none, or has not run)."""
        for info in self.op.steps:
            if info.name == step and info.data is not None:
                return info.data
        # The runner hands steps the operation as loaded; reread for the latest records.
        for info in self.ctx.operations.get(self.op.id).steps:
            if info.name == step and info.data is not None:
                return info.data
        return None


StepFn = Callable[[StepContext], StepOutput]


def audit(sc: StepContext, action: str, details: dict[str, Any]) -> None:
    """An audit entry of the step's operation on its tenant."""
    sc.ctx.audit.append(
        actor=sc.op.requested_by,
        action=action,
        tenant=sc.spec.slug,
        details={"operation": sc.op.id, **details},
    )
