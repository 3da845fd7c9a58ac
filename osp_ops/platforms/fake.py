"""A recording fake platform, for unit tests of the engine only (named as a fake).

It keeps what it was asked in ``calls`` and applies effects to an in-memory world so
tests can check that no step's side effect happened twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from osp_ops.domain.errors import PlatformError, TemporaryError
from osp_ops.domain.spec import TenantSpec
from osp_ops.platforms.base import Change, Event, Health, Reporter, TaskResult


@dataclass
class FakePlatform:
    """Records calls; ``fail`` maps a method name to an error to raise once per entry."""

    name: str = "fake"
    calls: list[tuple[str, str]] = field(default_factory=list)
    world: dict[str, dict[str, str]] = field(default_factory=dict)
    fail: dict[str, list[Exception]] = field(default_factory=dict)

    def _call(self, method: str, slug: str, reporter: Reporter | None = None) -> None:
        self.calls.append((method, slug))
        if reporter is not None:
            reporter(Event(f"fake {method}", host="fake", status="changed"))
        errors = self.fail.get(method)
        if errors:
            raise errors.pop(0)

    def provision(
        self, *, spec: TenantSpec, secrets: Mapping[str, str], reporter: Reporter
    ) -> Change:
        """Record and mark the tenant provisioned."""
        self._call("provision", spec.slug, reporter)
        state = self.world.setdefault(spec.slug, {})
        changed = state.get("provisioned") != "yes"
        state["provisioned"] = "yes"
        return Change(changed=int(changed))

    def deploy(
        self, *, spec: TenantSpec, version: str, secrets: Mapping[str, str], reporter: Reporter
    ) -> Change:
        """Record and set the running version."""
        self._call("deploy", spec.slug, reporter)
        state = self.world.setdefault(spec.slug, {})
        if state.get("provisioned") != "yes":
            raise PlatformError(f"fake: {spec.slug} deployed before provisioning")
        changed = state.get("version") != version
        state["version"] = version
        state["running"] = "yes"
        return Change(changed=int(changed))

    def run_task(
        self,
        *,
        spec: TenantSpec,
        version: str,
        task: str,
        secrets: Mapping[str, str],
        reporter: Reporter,
    ) -> TaskResult:
        """Record the task."""
        self._call(f"task:{task}", spec.slug, reporter)
        return TaskResult(ok=True, output=f"{task} done")

    def health(self, *, spec: TenantSpec) -> Health:
        """Healthy when running."""
        state = self.world.get(spec.slug, {})
        return Health(
            ok=state.get("running") == "yes",
            url=f"https://{spec.hosts.primary}/",
            version=state.get("version"),
        )

    def suspend(self, *, spec: TenantSpec, reporter: Reporter) -> Change:
        """Mark stopped."""
        self._call("suspend", spec.slug, reporter)
        self.world.setdefault(spec.slug, {})["running"] = "no"
        return Change(changed=1)

    def resume(self, *, spec: TenantSpec, reporter: Reporter) -> Change:
        """Mark running."""
        self._call("resume", spec.slug, reporter)
        self.world.setdefault(spec.slug, {})["running"] = "yes"
        return Change(changed=1)

    def destroy(self, *, spec: TenantSpec, reporter: Reporter) -> Change:
        """Forget the tenant."""
        self._call("destroy", spec.slug, reporter)
        self.world.pop(spec.slug, None)
        return Change(changed=1)


def flaky(times: int, message: str = "fake temporary failure") -> list[Exception]:
    """``times`` temporary errors, for FakePlatform.fail."""
    return [TemporaryError(message, delay=0) for _ in range(times)]
