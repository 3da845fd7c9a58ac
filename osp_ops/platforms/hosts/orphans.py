"""Runs cut off by a crash: their records, and the orphaned processes they leave.

Each run keeps a record (``RUN_RECORD``) of its osp-ops process and, from its first
event, its ansible-playbook process; a later run of the tenant finds the records of dead
owners, waits for (then stops) their process groups and scrubs what they left.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from osp_ops.platforms.base import Event, Reporter
from osp_ops.platforms.hosts.artifacts import scrub
from osp_ops.procinfo import start_time

# A run records its osp-ops process and, from its first event, its ansible-playbook
# process ([pid, start time]), so that a later run can tell one cut off by a crash.
RUN_RECORD = "osp-run.json"
# How long the next run of a tenant waits for an orphaned ansible-playbook to end.
ORPHAN_WAIT = 120.0


def proc_id(pid: int) -> list[Any]:
    """``[pid, start time]``: a process, told apart from a later one of the same pid."""
    return [pid, start_time(pid)]


def _proc_alive(proc: Any) -> bool:
    if not (isinstance(proc, list) and len(proc) == 2 and proc[1] is not None):
        return False
    return start_time(int(proc[0])) == str(proc[1])


def write_run_record(run_dir: Path, record: Mapping[str, Any]) -> None:
    """Replace the run's record at once (a reader never sees half of one)."""
    tmp = run_dir / f".{RUN_RECORD}.tmp"
    tmp.write_text(json.dumps(record))
    tmp.replace(run_dir / RUN_RECORD)


def settle_interrupted_runs(
    runs: Path, slug: str, hidden: Sequence[str], reporter: Reporter
) -> None:
    """Clean up after runs whose osp-ops process died (kill -9, reboot) before its end.

    Such a run kept its secrets file, and its ansible-playbook (which ignores SIGHUP) may
    still run as an orphan: it stops after its current task, when it finds its terminal
    gone. The caller holds the tenant's lease, so a run of this tenant whose osp-ops
    process is dead is nobody's: wait for it to end (stop it after ORPHAN_WAIT), then
    scrub it as a finished run is scrubbed. Other tenants' dead runs lose their secrets
    file only.
    """
    if not Path("/proc/self/stat").exists():  # no way to tell a live owner from a dead one
        return
    for path in sorted(runs.glob(f"*/{RUN_RECORD}")):
        try:
            record = json.loads(path.read_text("utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(record, dict) or _proc_alive(record.get("owner")):
            continue
        run_dir = path.parent
        shutil.rmtree(run_dir / "env", ignore_errors=True)
        if record.get("slug") != slug:
            continue
        groups = _run_process_groups(run_dir, record.get("playbook"))
        if groups:
            reporter(Event(message=f"waiting for the interrupted run {run_dir.name} to end "
                           f"(process groups {sorted(groups)})", status="info"))  # fmt: skip
            _end_process_groups(groups, wait=ORPHAN_WAIT)
        scrub(run_dir, hidden)
        path.unlink(missing_ok=True)


def _run_process_groups(run_dir: Path, playbook: Any) -> set[int]:
    """Process groups of a run's ansible-playbook (its session: workers, modules)."""
    pids = {int(playbook[0])} if _proc_alive(playbook) else set()
    marker = f"{run_dir}/".encode()
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if marker in (d / "cmdline").read_bytes():
                    pids.add(int(d.name))
            except OSError:
                continue
    groups = set()
    for pid in pids:
        try:
            groups.add(os.getpgid(pid))
        except OSError:
            continue
    groups.discard(os.getpgrp())
    return groups


def _end_process_groups(groups: set[int], *, wait: float) -> None:
    """Wait up to ``wait`` seconds for the groups to end, then SIGTERM, then SIGKILL."""

    def alive() -> set[int]:
        left = set()
        for g in groups:
            try:
                os.killpg(g, 0)
                left.add(g)
            except ProcessLookupError:
                continue
            except PermissionError:
                left.add(g)
        return left

    steps: list[tuple[signal.Signals | None, float]] = [
        (None, wait), (signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)
    ]  # fmt: skip
    for sig, seconds in steps:
        if sig is not None:
            for g in alive():
                with contextlib.suppress(OSError):
                    os.killpg(g, sig)
        deadline = time.monotonic() + seconds
        while alive() and time.monotonic() < deadline:
            time.sleep(0.5)
        if not alive():
            return
