"""The kind registry: every context loads every kind, whatever was imported before."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from osp_ops.domain.errors import TemporaryError
from osp_ops.domain.phases import Phase
from osp_ops.engine.api import request
from osp_ops.engine.registry import KIND_MODULES, Kind, Registry, RetryPolicy, load_kinds
from osp_ops.engine.runner import run_operation
from osp_ops.engine.steps import StepContext
from tests.factories import converge, fake_context, make_spec

pytestmark = pytest.mark.unit

KINDS = {
    "create", "apply", "suspend", "resume", "delete", "upgrade",
    "backup", "repair", "prune", "restore", "drill", "rotate-secrets",
}  # fmt: skip

# A fresh interpreter that imports only the context (no kind module, no CLI), builds one
# and prints what it had imported, what it has, and the first step of an upgrade.
_FRESH = """
import json, sys
from pathlib import Path
from osp_ops.engine.context import build_context
from osp_ops.platforms.fake import FakePlatform
from osp_ops.settings import Settings

before = sorted(m for m in sys.modules if m.startswith("osp_ops.engine.kinds."))
root = Path(sys.argv[1])
fake = FakePlatform()
ctx = build_context(
    Settings(data_dir=root / "data", tenants_dir=root / "tenants", retry_base_delay=0),
    actor="test",
    platform_factory=lambda _spec: fake,
)
from osp_ops.engine.api import request_upgrade
from tests.factories import converge, make_spec

converge(ctx, make_spec("lyon", version="0.27.7"))
op, _ = request_upgrade(ctx, make_spec("lyon", version="0.28.4"))
print(json.dumps({"before": before, "kinds": sorted(ctx.kinds.kinds), "upgrade": op.steps[0].name}))
"""


def test_a_fresh_process_has_every_kind_and_the_backup_before_upgrades(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _FRESH, str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout.splitlines()[-1])
    assert seen["before"] == []  # nothing had imported a kind module
    assert set(seen["kinds"]) == KINDS
    assert seen["upgrade"] == "backup-before-upgrade"


def test_each_context_has_its_own_registry(tmp_path: Path) -> None:
    first, second = fake_context(tmp_path / "a"), fake_context(tmp_path / "b")
    assert set(first.kinds.kinds) == set(second.kinds.kinds) == KINDS
    assert first.kinds is not second.kinds
    first.kinds.register(Kind("only-here", ("mark-ready",)), {})
    assert "only-here" in first.kinds.kinds and "only-here" not in second.kinds.kinds
    assert "only-here" not in load_kinds().kinds


def test_every_kind_module_registers_and_every_step_has_a_function() -> None:
    registry = load_kinds()
    registry.check()  # raises for a step without a function
    for name in KIND_MODULES:
        alone: Registry[StepContext] = Registry()
        __import__(name, fromlist=["register"]).register(alone)
        assert alone.kinds or alone.steps, name
    assert registry.has_step("backup-before-upgrade") and registry.has_step("deploy@0.28.4")


def test_kinds_carry_their_entry_phase() -> None:
    registry = load_kinds()
    assert {k: registry.entry_phase(k) for k in sorted(KINDS) if registry.entry_phase(k)} == {
        "apply": Phase.updating,
        "create": Phase.provisioning,
        "delete": Phase.deleting,
        "resume": Phase.ready,
        "suspend": Phase.suspended,
        "upgrade": Phase.updating,
    }
    assert registry.entry_phase("no-such-kind") is None


def test_a_missing_step_function_is_named() -> None:
    registry: Registry[StepContext] = Registry()
    registry.register(Kind("broken", ("nowhere", "mark-ready")), {})
    with pytest.raises(ValueError, match=r"kind broken: steps without functions: \['nowhere'"):
        registry.check()


def test_a_kind_retry_policy_overrides_the_settings(tmp_path: Path) -> None:
    ctx = fake_context(tmp_path, step_max_attempts=3)
    calls: list[str] = []

    def flaky(sc: StepContext) -> str:
        calls.append(sc.op.kind)
        raise TemporaryError("not yet", delay=0)

    ctx.kinds.register(
        Kind("once", ("flaky",), retry=RetryPolicy(max_attempts=1)), {"flaky": flaky}
    )
    ctx.kinds.register(Kind("default", ("flaky",)), {})
    spec = make_spec("lyon")
    converge(ctx, spec)
    for kind, attempts in (("once", 1), ("default", 3)):
        op, _ = request(ctx, kind, spec)
        with pytest.raises(TemporaryError):
            run_operation(ctx, op.id)
        assert calls.count(kind) == attempts
        assert ctx.operations.get(op.id).steps[0].attempts == attempts
