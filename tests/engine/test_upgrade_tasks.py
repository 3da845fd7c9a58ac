"""One-time upgrade tasks: each hop runs the catalog's tasks of the releases it enters,
after its migrations, and every run is recorded per tenant (command, hop, status,
output, time); a resumed upgrade skips what succeeded and refuses to rerun a task that
cannot be rerun after it was cut off. Engine + fake platform, SQLite."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from osp_ops.domain.catalog import default_catalog
from osp_ops.domain.errors import PlatformError
from osp_ops.domain.phases import Phase
from osp_ops.domain.spec import TenantSpec
from osp_ops.engine.api import request_converge
from osp_ops.engine.context import Context
from osp_ops.engine.runner import run_operation
from osp_ops.engine.upgrade_tasks import task_name
from osp_ops.platforms.fake import FakePlatform
from osp_ops.store.task_runs import TaskRuns
from tests.factories import fake_context, make_spec

pytestmark = pytest.mark.unit

TASKS_028 = default_catalog().app("decidim").hop_tasks("0.27.7", "0.28.4")


def _spec(version: str) -> TenantSpec:
    return make_spec("lyon", version=version)


@pytest.fixture
def fake() -> FakePlatform:
    return FakePlatform()


@pytest.fixture
def ctx(tmp_path: Path, fake: FakePlatform) -> Context:
    """A context whose upgrades do not roll back (tests/engine/test_upgrade_rollback.py
    has the rollback): the task runs' own resume is tested here."""
    c = fake_context(tmp_path, platform=fake)
    c.kinds.register(dataclasses.replace(c.kinds.kind("upgrade"), undo=None), {})
    return c


def _request(ctx: Context, version: str) -> str:
    ctx.specs.write(_spec(version))
    op, _ = request_converge(ctx, _spec(version))
    return op.id


def test_each_hop_runs_its_tasks_after_its_migrations_and_records_them(
    ctx: Context, fake: FakePlatform
) -> None:
    run_operation(ctx, _request(ctx, "0.27.7"))
    op_id = _request(ctx, "0.28.6")
    op = run_operation(ctx, op_id)
    names = [s.name for s in op.steps]
    i = names.index("upgrade-tasks@0.28.4")
    assert names[i - 1] == "migrate@0.28.4" and names[i + 1] == "check-health@0.28.4"
    assert "upgrade-tasks@0.28.6" not in names  # a patch release brings none
    tasks = [c for c in fake.calls if c[0].startswith("task:upgrade-")]
    assert [c[0] for c in tasks] == [f"task:{task_name('0.28.4', n)}" for n in range(1, 8)]
    runs = TaskRuns(ctx.db).for_tenant("lyon")
    assert len(runs) == len(TASKS_028) == 7
    assert {r.status for r in runs} == {"succeeded"}
    first = min(runs, key=lambda r: r.id)
    assert (first.hop_from, first.hop_to, first.task_version) == ("0.27.7", "0.28.4", "0.28.0")
    assert first.command == "bundle exec rails decidim:upgrade:migrate_wysiwyg_content"
    assert first.rerunnable is False and first.finished_at and first.output
    assert first.output.endswith("migrate_wysiwyg_content done")
    assert ctx.tenants.require("lyon").observed_version == "0.28.6"


def test_a_failed_task_is_recorded_and_the_retry_skips_what_succeeded(
    ctx: Context, fake: FakePlatform
) -> None:
    run_operation(ctx, _request(ctx, "0.27.7"))
    fake.fail_tasks.append(task_name("0.28.4", 3))
    op_id = _request(ctx, "0.28.4")
    with pytest.raises(PlatformError, match="initialize_default_content_blocks"):
        run_operation(ctx, op_id)
    runs = {r.id.rsplit("/", 1)[1]: r for r in TaskRuns(ctx.db).for_tenant("lyon")}
    assert (runs["1"].status, runs["2"].status, runs["3"].status) == (
        "succeeded", "succeeded", "failed",
    )  # fmt: skip
    assert runs["3"].output == f"{task_name('0.28.4', 3)} exited 1"
    assert "4" not in runs
    assert ctx.tenants.require("lyon").phase is Phase.failed

    fake.calls.clear()
    ctx.operations.requeue(op_id)
    run_operation(ctx, op_id)
    ran = [c[0] for c in fake.calls if c[0].startswith("task:")]
    assert ran == [f"task:{task_name('0.28.4', n)}" for n in range(3, 8)]
    runs = {r.id.rsplit("/", 1)[1]: r for r in TaskRuns(ctx.db).for_tenant("lyon")}
    assert [runs[str(n)].attempts for n in range(1, 8)] == [1, 1, 2, 1, 1, 1, 1]
    assert {r.status for r in runs.values()} == {"succeeded"}
    assert ctx.tenants.require("lyon").phase is Phase.ready


def test_a_task_cut_off_while_running_is_rerun_only_when_it_can_be(
    ctx: Context, fake: FakePlatform
) -> None:
    run_operation(ctx, _request(ctx, "0.27.7"))
    op_id = _request(ctx, "0.28.4")
    # As a process killed during task 1 (not rerunnable) leaves it.
    TaskRuns(ctx.db).start(
        f"{op_id}/0.28.4/1", tenant="lyon", operation_id=op_id, hop=("0.27.7", "0.28.4"),
        task_version="0.28.0", command=" ".join(TASKS_028[0].command), rerunnable=False,
    )  # fmt: skip
    with pytest.raises(PlatformError, match="cut off while it ran and cannot be rerun"):
        run_operation(ctx, op_id)
    assert not [c for c in fake.calls if c[0].startswith("task:upgrade-")]
