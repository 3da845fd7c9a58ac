"""Ten CLI processes on one tenant: one runs, nine are told who holds the lease (exit 5).
A holder killed with SIGKILL loses its lease at once; a holder on another host only when
its TTL runs out; either way the interrupted operation is resumed and finishes."""

from __future__ import annotations

import json
import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, update

from osp_ops.store.db import Database
from osp_ops.store.tables import LeaseRow, OperationRow
from tests.core.cli import Sandbox, Zygote

pytestmark = pytest.mark.integration

SLUG = "nanterre"


@pytest.fixture(scope="module")
def zygote() -> Iterator[Zygote]:
    z = Zygote()
    yield z
    z.close()


@pytest.fixture
def box(zygote: Zygote, tmp_path: Path, state_url: str) -> Iterator[Sandbox]:
    sandbox = Sandbox(tmp_path, state_url=state_url, zygote=zygote)
    created = sandbox.run("tenant", "create", SLUG, "--app", "decidim")
    assert created.rc == 0, created.stderr
    yield sandbox


def _db(box: Sandbox) -> Database:
    return Database(box.state_url or f"sqlite:///{box.data_dir / 'state.db'}", migrate=False)


def _ops(box: Sandbox, kind: str) -> list[tuple[str, str]]:
    db = _db(box)
    try:
        with db.transaction() as s:
            q = select(OperationRow.id, OperationRow.status).where(OperationRow.kind == kind)
            return [(r.id, r.status) for r in s.execute(q.order_by(OperationRow.created_at))]
    finally:
        db.dispose()


def _lease(box: Sandbox) -> tuple[str | None, float]:
    db = _db(box)
    try:
        with db.transaction() as s:
            row = s.get(LeaseRow, SLUG)
            return (row.holder, row.expires_at) if row else (None, 0.0)
    finally:
        db.dispose()


def test_ten_processes_one_runs_the_others_name_the_holder(box: Sandbox) -> None:
    pids = [box.start("tenant", "apply", SLUG, OSP_OPS_FAKE_PLATFORM_DELAY="2")
            for _ in range(10)]  # fmt: skip
    numbers = list(range(box._runs - 9, box._runs + 1))
    results = [box.finish(pid, n) for pid, n in zip(pids, numbers, strict=True)]
    winners = [r for r in results if r.rc == 0]
    losers = [r for r in results if r.rc != 0]
    assert len(winners) == 1, [(r.rc, r.stderr) for r in results]
    assert {r.rc for r in losers} == {5}, [r.stderr for r in losers]
    for r in losers:
        m = re.search(
            r"tenant 'nanterre' is busy: op:(\S+)@[^:]+:(\d+):\d+ holds its lease", r.stderr
        )
        assert m, r.stderr
        assert int(m.group(2)) == winners[0].pid
        assert "Traceback" not in r.stderr
    ops = _ops(box, "apply")
    assert ops == [(m.group(1), "succeeded")]  # nine requests joined the one operation
    assert _lease(box)[0] is None


def test_killed_holder_loses_its_lease_at_once_and_the_operation_resumes(box: Sandbox) -> None:
    pid = box.start("tenant", "apply", SLUG, OSP_OPS_FAKE_PLATFORM_DELAY="60")
    deadline = time.monotonic() + 30
    while f":{pid}:" not in (_lease(box)[0] or ""):
        assert time.monotonic() < deadline, "the holder never took the lease"
        time.sleep(0.05)
    holder = _lease(box)[0]
    assert holder is not None and f":{pid}:" in holder
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.2)  # a zombie now: killed, not reaped yet; it counts as dead
    started = time.monotonic()
    rerun = box.run("tenant", "apply", SLUG)
    assert rerun.rc == 0, rerun.stderr
    assert time.monotonic() - started < 30  # the lease TTL is 60 s: it was not waited for
    assert "resuming pending operation" in rerun.stdout
    assert box.finish(pid).rc == -signal.SIGKILL
    assert [status for _, status in _ops(box, "apply")] == ["succeeded"]
    assert box.world()["world"][SLUG]["running"] == "yes"


def test_holder_on_another_host_is_waited_for_until_its_ttl(box: Sandbox) -> None:
    remote = "op:20990101T000000-remote@other-host.example:4242:777"
    db = _db(box)
    try:
        with db.transaction() as s:
            s.execute(update(LeaseRow).where(LeaseRow.tenant == SLUG)
                      .values(holder=remote, expires_at=time.time() + 4, token=LeaseRow.token + 1))  # fmt: skip
    finally:
        db.dispose()
    busy = box.run("tenant", "apply", SLUG)
    assert busy.rc == 5
    assert f"is busy: {remote} holds its lease" in busy.stderr
    assert [status for _, status in _ops(box, "apply")] == ["queued"]
    started = time.monotonic()
    waited = box.run("tenant", "apply", SLUG, "--wait", "20")
    assert waited.rc == 0, waited.stderr
    assert time.monotonic() - started > 2  # it did wait for the remote lease to expire
    assert [status for _, status in _ops(box, "apply")] == ["succeeded"]


def test_a_waiter_does_not_rerun_the_operation_it_waited_for(box: Sandbox) -> None:
    """`tenant apply & ...; tenant apply --wait`: the waiter joins the running operation
    and, once the lease is free, finds it done (it re-reads it) instead of running it again."""
    pid = box.start("tenant", "apply", SLUG, OSP_OPS_FAKE_PLATFORM_DELAY="3")
    deadline = time.monotonic() + 30
    while f":{pid}:" not in (_lease(box)[0] or ""):
        assert time.monotonic() < deadline, "the first apply never took the lease"
        time.sleep(0.05)
    waiter = box.run("tenant", "apply", SLUG, "--wait", "60")
    assert waiter.rc == 0, waiter.stderr
    assert box.finish(pid).rc == 0
    [(op_id, status)] = _ops(box, "apply")
    assert status == "succeeded"
    shown = box.run("op", "show", op_id, "--json")
    assert shown.rc == 0, shown.stderr
    steps = json.loads(shown.stdout)["steps"]
    assert steps and {s["attempts"] for s in steps} == {1}, steps
