"""A recording fake platform, for unit tests of the engine only (named as a fake).

It keeps what it was asked in ``calls`` and applies effects to an in-memory world so
tests can check that no step's side effect happened twice. Given ``buckets``, it keeps
the tenants' upload buckets in provision and destroy, as the Kubernetes platform does,
for tests whose Kubernetes tenants' data is real.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from osp_ops.domain.catalog import Catalog
from osp_ops.domain.errors import ConfigError, PlatformError, TemporaryError
from osp_ops.domain.spec import TenantSpec
from osp_ops.platforms.base import Change, Event, Health, Reporter, TaskResult
from osp_ops.platforms.data import BackupAccess
from osp_ops.settings import Settings

if TYPE_CHECKING:
    from osp_ops.platforms.kubernetes.buckets import TenantBuckets


@dataclass
class FakePlatform:
    """Records calls; ``fail`` maps a method name to an error to raise once per entry."""

    name: str = "fake"
    # Capabilities (platforms/base.py): AppOnly, DataAccess that holds no data, and
    # BucketStorage (given ``buckets``).
    app_only: bool = True
    calls: list[tuple[str, str]] = field(default_factory=list)
    world: dict[str, dict[str, str]] = field(default_factory=dict)
    fail: dict[str, list[Exception]] = field(default_factory=dict)
    fail_tasks: list[str] = field(default_factory=list)
    buckets: TenantBuckets | None = None

    def _call(self, method: str, slug: str, reporter: Reporter | None = None) -> None:
        self.calls.append((method, slug))
        if reporter is not None:
            reporter(Event(f"fake {method}", host="fake", status="changed"))
        errors = self.fail.get(method)
        if errors:
            raise errors.pop(0)

    def provision(
        self,
        *,
        spec: TenantSpec,
        secrets: Mapping[str, str],
        reporter: Reporter,
        tenant_id: str | None = None,
    ) -> Change:
        """Record and mark the tenant provisioned (its bucket first, given ``buckets``)."""
        self._call("provision", spec.slug, reporter)
        bucket = self.buckets.ensure(spec, reporter) if self.buckets is not None else 0
        state = self.world.setdefault(spec.slug, {})
        changed = state.get("provisioned") != "yes"
        state["provisioned"] = "yes"
        return Change(changed=bucket + int(changed))

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
        command: Sequence[str] | None = None,
    ) -> TaskResult:
        """Record the task (``fail_tasks`` names tasks that end not ok)."""
        self._call(f"task:{task}", spec.slug, reporter)
        if task in self.fail_tasks:
            self.fail_tasks.remove(task)
            return TaskResult(ok=False, output=f"{task} exited 1")
        shown = " ".join(command) if command else task
        return TaskResult(ok=True, output=f"{shown} done")

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
        state = self.world.setdefault(spec.slug, {})
        changed = state.get("running") != "no"
        state["running"] = "no"
        return Change(changed=int(changed))

    def resume(self, *, spec: TenantSpec, reporter: Reporter) -> Change:
        """Mark running."""
        self._call("resume", spec.slug, reporter)
        state = self.world.setdefault(spec.slug, {})
        changed = state.get("running") != "yes"
        state["running"] = "yes"
        return Change(changed=int(changed))

    def destroy(
        self, *, spec: TenantSpec, reporter: Reporter, tenant_id: str | None = None
    ) -> Change:
        """Forget the tenant (and delete its bucket, given ``buckets``)."""
        self._call("destroy", spec.slug, reporter)
        changed = int(self.world.pop(spec.slug, None) is not None)
        if self.buckets is not None:
            changed += self.buckets.delete(spec, reporter)
        return Change(changed=changed)

    def keeps_bucket(self, spec: TenantSpec) -> bool:
        """Whether the tenant's uploads are in a bucket (given ``buckets``, as configured)."""
        return self.buckets is not None and self.buckets.enabled

    def backup_access(self, spec: TenantSpec) -> BackupAccess:
        """None of the tenant's data is here: ConfigError (a backup gate then skips)."""
        raise ConfigError(f"the {self.name} platform holds no data of {spec.slug!r} to back up")


def flaky(times: int, message: str = "fake temporary failure") -> list[Exception]:
    """``times`` temporary errors, for FakePlatform.fail."""
    return [TemporaryError(message, delay=0) for _ in range(times)]


DELAY_ENV = "OSP_OPS_FAKE_PLATFORM_DELAY"
JOURNAL_ENV = "OSP_OPS_FAKE_PLATFORM_JOURNAL"


def journal_platform(settings: Settings, catalog: Catalog) -> JournalFakePlatform:
    """The journaled fake, its file named by ``$OSP_OPS_FAKE_PLATFORM_JOURNAL`` (a
    platform factory: ``OSP_OPS_PLATFORM=osp_ops.platforms.fake:journal_platform``)."""
    path = os.environ.get(JOURNAL_ENV)
    if not path:
        raise ConfigError(f"${JOURNAL_ENV} names no journal file")
    return JournalFakePlatform(path=path)


@dataclass
class JournalFakePlatform(FakePlatform):
    """The fake, with its world and an effect journal kept in a JSON file.

    Lets crash tests run the real CLI in a subprocess, kill it, and count side effects
    across processes: ``effects`` lists each change that actually happened.
    """

    path: str = ""

    def _load(self) -> dict[str, object]:
        try:
            with open(self.path, encoding="utf-8") as f:
                data: dict[str, object] = json.load(f)
                return data
        except FileNotFoundError:
            return {"world": {}, "effects": []}

    def _save(self, data: dict[str, object]) -> None:
        tmp = self.path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def _effect(self, method: str, slug: str, change: Change) -> Change:
        data = self._load()
        data["world"] = self.world
        if change.changed:
            effects = data["effects"]
            assert isinstance(effects, list)
            effects.append([method, slug])
        self._save(data)
        return change

    def _sync(self) -> None:
        world = self._load()["world"]
        assert isinstance(world, dict)
        self.world = world

    def provision(
        self,
        *,
        spec: TenantSpec,
        secrets: Mapping[str, str],
        reporter: Reporter,
        tenant_id: str | None = None,
    ) -> Change:
        """Provision and journal."""
        self._sync()
        return self._effect(
            "provision", spec.slug, super().provision(spec=spec, secrets=secrets, reporter=reporter)
        )

    def deploy(
        self, *, spec: TenantSpec, version: str, secrets: Mapping[str, str], reporter: Reporter
    ) -> Change:
        """Deploy and journal; takes ``$OSP_OPS_FAKE_PLATFORM_DELAY`` seconds (tests of
        concurrency need a step that lasts)."""
        delay = float(os.environ.get(DELAY_ENV) or 0)
        if delay:
            time.sleep(delay)
        self._sync()
        change = super().deploy(spec=spec, version=version, secrets=secrets, reporter=reporter)
        return self._effect("deploy", spec.slug, change)

    def health(self, *, spec: TenantSpec) -> Health:
        """Health from the journaled world."""
        self._sync()
        return super().health(spec=spec)

    def suspend(self, *, spec: TenantSpec, reporter: Reporter) -> Change:
        """Suspend and journal."""
        self._sync()
        return self._effect("suspend", spec.slug, super().suspend(spec=spec, reporter=reporter))

    def resume(self, *, spec: TenantSpec, reporter: Reporter) -> Change:
        """Resume and journal."""
        self._sync()
        return self._effect("resume", spec.slug, super().resume(spec=spec, reporter=reporter))

    def destroy(
        self, *, spec: TenantSpec, reporter: Reporter, tenant_id: str | None = None
    ) -> Change:
        """Destroy and journal."""
        self._sync()
        return self._effect("destroy", spec.slug, super().destroy(spec=spec, reporter=reporter))
