"""Upgrades walk the catalog path one version at a time (engine + fake platform, SQLite)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from osp_ops.domain.errors import CatalogError, PlatformError
from osp_ops.domain.phases import Phase
from osp_ops.domain.spec import TenantSpec
from osp_ops.engine.api import request, request_converge
from osp_ops.engine.context import Context
from osp_ops.engine.runner import run_operation
from osp_ops.platforms.fake import FakePlatform
from tests.factories import converge, fake_context, make_spec

pytestmark = pytest.mark.unit


def _spec(version: str) -> TenantSpec:
    return make_spec("lyon", version=version)


@pytest.fixture
def ctx(tmp_path: Path) -> Context:
    return fake_context(tmp_path)


def _converge(ctx: Context, spec: TenantSpec) -> str:
    return converge(ctx, spec).kind


def test_upgrade_passes_through_every_allowed_version(ctx: Context) -> None:
    assert _converge(ctx, _spec("0.27.6")) == "create"
    assert _converge(ctx, _spec("0.28.5")) == "upgrade"
    fake = ctx.platform(_spec("0.28.5"))
    assert isinstance(fake, FakePlatform)
    deploys = [c for c in fake.calls if c[0] == "deploy"]
    assert len(deploys) == 4  # create + 0.27.7, 0.28.4, 0.28.5
    rec = ctx.tenants.require("lyon")
    assert rec.observed_version == "0.28.5"
    assert rec.phase is Phase.ready
    op = ctx.operations.recent(tenant="lyon", limit=1)[0]
    assert [s.name for s in op.steps if s.name.startswith("deploy@")] == [
        "deploy@0.27.7",
        "deploy@0.28.4",
        "deploy@0.28.5",
    ]


def test_downgrade_is_refused_before_anything_is_recorded(ctx: Context) -> None:
    _converge(ctx, _spec("0.28.4"))
    before = len(ctx.operations.recent(limit=100))
    with pytest.raises(CatalogError, match=r"cannot be upgraded from 0\.28\.4 to 0\.27\.7"):
        request_converge(ctx, _spec("0.27.7"))
    assert len(ctx.operations.recent(limit=100)) == before


def test_failed_upgrade_records_the_version_reached(ctx: Context) -> None:
    """Without its rollback (tests/engine/test_upgrade_rollback.py has it), a failed
    upgrade stops at the version it reached."""
    ctx.kinds.register(dataclasses.replace(ctx.kinds.kind("upgrade"), undo=None), {})
    _converge(ctx, _spec("0.27.7"))
    fake = ctx.platform(_spec("0.27.7"))
    assert isinstance(fake, FakePlatform)
    # Deploy of 0.28.4 works, deploy of 0.28.5 fails permanently.
    fake.fail["deploy"] = []
    ctx.specs.write(_spec("0.28.5"))
    op, _ = request_converge(ctx, _spec("0.28.5"))
    original = fake.deploy

    def deploy(**kw: object) -> object:
        if kw["version"] == "0.28.5":
            raise PlatformError("image pull failed")
        return original(**kw)  # type: ignore[arg-type]

    fake.deploy = deploy  # type: ignore[method-assign]
    with pytest.raises(PlatformError):
        run_operation(ctx, op.id)
    rec = ctx.tenants.require("lyon")
    assert rec.observed_version == "0.28.4"
    assert rec.phase is Phase.failed
    assert "image pull failed" in (rec.reason or "")


def test_suspend_of_never_created_tenant_is_refused(ctx: Context) -> None:
    from osp_ops.domain.errors import IllegalTransitionError

    with pytest.raises(IllegalTransitionError, match="never created"):
        request(ctx, "suspend", _spec("0.27.6"))
    assert ctx.tenants.get("lyon") is None


def test_a_failed_gate_leaves_the_tenant_as_it_was(ctx: Context) -> None:
    """A gate (the backup before an upgrade) that fails first leaves the phase alone;
    a failure after any other step still marks the tenant failed."""
    from osp_ops.engine.kinds.upgrade import upgrade_steps
    from osp_ops.engine.registry import Kind
    from osp_ops.engine.steps import StepContext

    assert upgrade_steps(("0.28.4",), backup_first=True)[:2] == (
        "backup-before-upgrade",
        "begin-update",
    )

    def gate(sc: StepContext) -> str:
        raise PlatformError("backup store not writable")

    ctx.kinds.register(
        Kind(
            "test-gated",
            ("test-gate", "begin-update", "mark-ready"),
            gates=frozenset({"test-gate"}),
        ),
        {"test-gate": gate},
    )
    _converge(ctx, _spec("0.27.7"))
    op, _ = request(ctx, "test-gated", _spec("0.27.7"))
    with pytest.raises(PlatformError):
        run_operation(ctx, op.id)
    rec = ctx.tenants.require("lyon")
    assert (rec.phase, rec.observed_version) == (Phase.ready, "0.27.7")
    assert ctx.operations.get(op.id).status == "failed"

    op, _ = request(ctx, "test-gated", _spec("0.27.7"), steps=("begin-update", "test-gate"))
    with pytest.raises(PlatformError):
        run_operation(ctx, op.id)
    assert ctx.tenants.require("lyon").phase is Phase.failed
