"""The point of no return of an upgrade (``rollback.blame``), and a rollback on an
app-only platform with no data behind it (the gate took no backup: the previous
version is deployed again, nothing restored). Engine + fake platform, SQLite."""

from __future__ import annotations

from pathlib import Path

import pytest

from osp_ops.domain.errors import RolledBackError
from osp_ops.domain.phases import Phase
from osp_ops.engine.api import request_converge
from osp_ops.engine.kinds.rollback import blame
from osp_ops.engine.runner import run_operation
from osp_ops.platforms.fake import FakePlatform
from tests.factories import converge, fake_context, make_spec

pytestmark = pytest.mark.unit

STEPS = (
    "backup-before-upgrade",
    "begin-update",
    "deploy@0.28.4",
    "migrate@0.28.4",
    "check-health@0.28.4",
    "record-version@0.28.4",
    "mark-ready",
)


def _steps(*statuses: str) -> list[tuple[str, str]]:
    padded = (*statuses, *("pending",) * (len(STEPS) - len(statuses)))
    return list(zip(STEPS, padded, strict=True))


@pytest.mark.parametrize(
    ("statuses", "blamed"),
    [
        ((), None),  # nothing ran
        (("failed",), None),  # the gate failed: nothing was touched
        (("running",), None),  # cut off in the gate: it goes on
        (("done", "running"), None),  # cut off in begin-update: it goes on
        (("done", "done"), None),  # died before the deploy started: it goes on
        (("done", "done", "failed"), "deploy@0.28.4"),
        (("done", "done", "running"), "deploy@0.28.4"),  # cut off in the deploy
        (("done", "done", "done"), "migrate@0.28.4"),  # died between deploy and migrate
        (("done", "done", "done", "done", "failed"), "check-health@0.28.4"),
        (("done",) * 5, None),  # healthy on the new version: only records are left
        (("done",) * 6 + ("failed",), None),
    ],
)
def test_the_point_of_no_return(statuses: tuple[str, ...], blamed: str | None) -> None:
    assert blame(_steps(*statuses)) == blamed


def test_an_app_only_upgrade_rolls_back_without_a_restore(tmp_path: Path) -> None:
    fake = FakePlatform()
    ctx = fake_context(tmp_path, platform=fake)
    converge(ctx, make_spec("lyon", version="0.27.7"))
    fake.fail_tasks.append("migrate")
    spec = make_spec("lyon", version="0.28.4")
    ctx.specs.write(spec)
    op, _ = request_converge(ctx, spec)
    with pytest.raises(RolledBackError, match=r"migrate@0\.28\.4 failed"):
        run_operation(ctx, op.id)
    done = ctx.operations.get(op.id)
    out = {s.name: s.output or "" for s in done.steps}
    assert out["rollback-restore-database"].startswith("no database: skipped")
    assert [c[0] for c in fake.calls[-3:]] == ["suspend", "deploy", "resume"]
    assert fake.world["lyon"] == {"provisioned": "yes", "version": "0.27.7", "running": "yes"}
    rec = ctx.tenants.require("lyon")
    assert (rec.phase, rec.observed_version) == (Phase.ready, "0.27.7")
