"""Step data: what a step returns for later steps is stored with its record, read back
by a later step (also after a resume in a new runner) and shown by `op show --json`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from osp_ops.cli.main import app
from osp_ops.domain.errors import PlatformError
from osp_ops.engine.api import request
from osp_ops.engine.context import Context
from osp_ops.engine.registry import Kind, StepResult
from osp_ops.engine.runner import run_operation
from osp_ops.engine.steps import StepContext
from tests.factories import converge, fake_context, make_spec

pytestmark = pytest.mark.unit

DATA = {"backup_id": "20260101T000000Z-ab12", "sizes": [1, 2], "nested": {"ok": True}}


def _kind(ctx: Any, seen: list[Any], fail_once: list[bool]) -> None:
    def produce(sc: StepContext) -> StepResult:
        return StepResult("produced 20260101T000000Z-ab12", DATA)

    def consume(sc: StepContext) -> str:
        if fail_once:
            fail_once.pop()
            raise PlatformError("consumer down")
        seen.append(sc.data_of("produce"))
        return "consumed"

    ctx.kinds.register(
        Kind("data-test", ("produce", "consume"), failure_phase=None),
        {"produce": produce, "consume": consume},
    )


def _queued(tmp_path: Path, seen: list[Any], fail_once: list[bool]) -> tuple[Context, str]:
    """A context with the test kind, lyon created, and a data-test operation queued."""
    ctx = fake_context(tmp_path)
    _kind(ctx, seen, fail_once)
    spec = make_spec("lyon")
    converge(ctx, spec)
    op, _ = request(ctx, "data-test", spec)
    return ctx, op.id


def test_a_later_step_reads_the_data_an_earlier_step_returned(tmp_path: Path) -> None:
    seen: list[Any] = []
    ctx, op_id = _queued(tmp_path, seen, fail_once=[])
    done = run_operation(ctx, op_id)
    assert done.status == "succeeded"
    assert seen == [DATA]
    produced, consumed = done.steps
    assert (produced.output, produced.data) == ("produced 20260101T000000Z-ab12", DATA)
    assert (consumed.output, consumed.data) == ("consumed", None)  # a plain string: text only
    assert done.to_json()["steps"][0]["data"] == DATA


def test_the_data_survives_a_retry_in_a_new_context(tmp_path: Path) -> None:
    seen: list[Any] = []
    ctx, op_id = _queued(tmp_path, seen, fail_once=[True])
    with pytest.raises(PlatformError):
        run_operation(ctx, op_id)
    ctx.operations.requeue(op_id)

    again = fake_context(tmp_path)  # a new process: the data comes from the state DB
    _kind(again, seen, fail_once=[])
    done = run_operation(again, op_id)
    assert done.status == "succeeded" and seen == [DATA]


def test_op_show_json_has_each_steps_data(tmp_path: Path) -> None:
    seen: list[Any] = []
    ctx, op_id = _queued(tmp_path, seen, fail_once=[])
    run_operation(ctx, op_id)
    env = {
        "OSP_OPS_DATA_DIR": str(tmp_path / "data"),
        "OSP_OPS_TENANTS_DIR": str(tmp_path / "tenants"),
    }
    shown = CliRunner().invoke(app, ["op", "show", op_id, "--json"], env=env)
    assert shown.exit_code == 0, shown.output
    steps = json.loads(shown.output)["steps"]
    assert [(s["name"], s["data"]) for s in steps] == [("produce", DATA), ("consume", None)]
