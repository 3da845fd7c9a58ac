"""Crash safety: kill -9 the CLI at every step boundary, rerun, and get a clean run's world.

Each case runs the real CLI (forked from tests/core/zygote.py, which pays the imports
once) with ``OSP_OPS_FAILPOINT`` armed so it dies by SIGKILL there, then reruns the same
command without it. The rerun must finish, leave the tenant record, the operation's
steps and the fake platform's world exactly as an uninterrupted run does, and no side
effect may have happened twice (the journal lists each effect that changed something).
"""

from __future__ import annotations

import re
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from osp_ops.engine.registry import load_kinds
from osp_ops.store.audit import AuditKey, AuditLog
from osp_ops.store.db import Database
from osp_ops.store.secrets import MasterKey
from osp_ops.store.tables import OperationRow, SecretRow, StepRow, TenantRow
from tests.core.cli import Sandbox, Zygote

pytestmark = pytest.mark.integration

CREATE = ("tenant", "create", "nanterre", "--app", "openslides")
DELETE = ("tenant", "delete", "nanterre", "--yes")
BOUNDARIES = ("before-step", "after-step", "step-recorded")
KINDS = load_kinds().kinds  # the kinds every context loads


def snapshot(box: Sandbox) -> dict[str, Any]:
    """Everything a rerun must get right, without timestamps, ids and attempt counts."""
    db = Database(f"sqlite:///{box.data_dir / 'state.db'}", migrate=False)
    try:
        with db.transaction() as s:
            t = s.get(TenantRow, "nanterre")
            reason = t and t.reason and re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d", "<date>", t.reason)
            tenant = t and (t.phase, reason, t.app, t.desired_version, t.observed_version,
                            t.platform, t.spec_hash)  # fmt: skip
            ops = []
            for op in s.execute(select(OperationRow).order_by(OperationRow.created_at)).scalars():
                steps = s.execute(
                    select(StepRow.name, StepRow.status)
                    .where(StepRow.operation_id == op.id)
                    .order_by(StepRow.idx)
                ).all()
                ops.append((op.kind, op.status, op.error, [tuple(x) for x in steps]))
            secrets = sorted(s.execute(select(SecretRow.name)).scalars())
        audit = AuditLog(db, AuditKey(MasterKey(box.data_dir / "master.key"))).verify(anchor=False)
        assert audit.ok, audit.problems
    finally:
        db.dispose()
    journal = box.world()
    return {"tenant": tenant, "operations": ops, "secrets": secrets,
            "world": journal["world"], "effects": journal["effects"]}  # fmt: skip


@pytest.fixture(scope="module")
def zygote() -> Iterator[Zygote]:
    z = Zygote()
    yield z
    z.close()


@pytest.fixture(scope="module")
def created(zygote: Zygote, tmp_path_factory: pytest.TempPathFactory) -> Sandbox:
    """A world where nanterre was created without interruption."""
    box = Sandbox(tmp_path_factory.mktemp("created"), zygote=zygote)
    result = box.run(*CREATE)
    assert result.rc == 0, result.stderr
    return box


@pytest.fixture(scope="module")
def deleted(created: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Sandbox:
    """A world where nanterre was created, then deleted, without interruption."""
    box = created.copy_to(tmp_path_factory.mktemp("deleted") / "w")
    result = box.run(*DELETE)
    assert result.rc == 0, result.stderr
    return box


def test_clean_runs_have_each_effect_once(created: Sandbox, deleted: Sandbox) -> None:
    assert created.world()["effects"] == [["provision", "nanterre"], ["deploy", "nanterre"]]
    assert snapshot(created)["tenant"][0] == "ready"
    assert snapshot(deleted)["tenant"][0] == "deleted"
    assert deleted.world() == {
        "world": {},
        "effects": [["provision", "nanterre"], ["deploy", "nanterre"], ["destroy", "nanterre"]],
    }


def _crash_and_rerun(box: Sandbox, argv: tuple[str, ...], failpoint: str) -> None:
    killed = box.run(*argv, OSP_OPS_FAILPOINT=failpoint)
    assert killed.rc == -signal.SIGKILL, (failpoint, killed.rc, killed.stderr)
    rerun = box.run(*argv)
    assert rerun.rc == 0, (failpoint, rerun.stdout, rerun.stderr)


def _effects_once(effects: list[list[str]]) -> None:
    assert len({tuple(e) for e in effects}) == len(effects), effects


@pytest.mark.parametrize("step", KINDS["create"].steps)
@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_create_survives_kill_at_every_boundary(
    zygote: Zygote, created: Sandbox, tmp_path: Path, boundary: str, step: str
) -> None:
    box = Sandbox(tmp_path, zygote=zygote)
    _crash_and_rerun(box, CREATE, f"{boundary}:{step}")
    after = snapshot(box)
    _effects_once(after["effects"])
    assert after == snapshot(created)


@pytest.mark.parametrize("step", KINDS["delete"].steps)
@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_delete_survives_kill_at_every_boundary(
    created: Sandbox, deleted: Sandbox, tmp_path: Path, boundary: str, step: str
) -> None:
    box = created.copy_to(tmp_path / "w")
    _crash_and_rerun(box, DELETE, f"{boundary}:{step}")
    after = snapshot(box)
    _effects_once(after["effects"])
    assert after == snapshot(deleted)


def test_kill_in_a_fresh_process_resumes_too(created: Sandbox, tmp_path: Path) -> None:
    """The same, with the CLI started as its own process (no zygote) both times."""
    box = Sandbox(tmp_path)
    killed = box.run_process(*CREATE, OSP_OPS_FAILPOINT="after-step:deploy")
    assert killed.rc == -signal.SIGKILL
    rerun = box.run_process(*CREATE)
    assert rerun.rc == 0, rerun.stderr
    assert "resuming pending operation" in rerun.stdout
    assert snapshot(box) == snapshot(created)
