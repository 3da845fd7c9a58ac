"""Running one playbook: a private ansible-runner directory per run, its events turned
into reports and an outcome, its failures into PlatformError.

The only module that imports ``ansible_runner``. Each run has its own private data
directory under ``runs_dir`` (the last ``keep_runs`` are kept for inspection). Secrets
reach Ansible through ``env/extravars``, a mode-0600 file that ansible-playbook reads
with ``-e @file``: never on a command line. After the run the file is deleted and every
kept artifact is scrubbed of the secret values (``artifacts.py``).
"""

from __future__ import annotations

import json
import os
import secrets as _random
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ansible_runner

from osp_ops.domain.errors import PlatformError
from osp_ops.platforms.base import Event, Reporter
from osp_ops.platforms.hosts.artifacts import (
    mask,
    scrub,
    scrubbed_tail,
    secret_values,
    write_private,
)
from osp_ops.platforms.hosts.inventory import ansible_env
from osp_ops.platforms.hosts.orphans import (
    RUN_RECORD,
    proc_id,
    settle_interrupted_runs,
    write_run_record,
)

_STATUS = {
    "runner_on_ok": "ok",
    "runner_on_failed": "failed",
    "runner_on_unreachable": "failed",
    "runner_on_skipped": "skipped",
}


@dataclass
class Outcome:
    """What one playbook run did."""

    changed: dict[str, int] = field(default_factory=dict)
    failures: list[tuple[str, str, str]] = field(default_factory=list)  # host, task, msg
    unreachable: list[tuple[str, str]] = field(default_factory=list)  # host, msg
    output: list[str] = field(default_factory=list)


def _message(res: Mapping[str, Any]) -> str:
    if "censored" in res:
        return "output hidden (no_log): see the host's logs"
    parts = [str(res.get(k, "")).strip() for k in ("msg", "stderr", "stdout")]
    parts = [p for p in parts if p]
    if not parts:
        return json.dumps(res)[:300]
    # Tails long enough for a traceback: `op show` prints them whole, tables one line.
    return " | ".join(p[-4000:] for p in parts)


def run_playbook(
    *,
    playbooks_dir: Path,
    playbook: str,
    runs_dir: Path,
    keep_runs: int,
    slug: str,
    target: str,
    public: Mapping[str, Any],
    secret: Mapping[str, Any],
    inventory: Callable[[Path], str],
    ansible_settings: Mapping[str, str],
    reporter: Reporter,
) -> Outcome:
    """Run ``playbook`` for tenant ``slug`` on ``target`` with the extra variables
    ``public`` and ``secret`` (masked everywhere after); ``inventory(run_dir)`` gives the
    inventory. Settles the tenant's interrupted runs first; PlatformError on a failure."""
    hidden = secret_values(secret)
    settle_interrupted_runs(runs_dir, slug, hidden, reporter)
    run_dir = new_run_dir(runs_dir, slug, playbook, keep_runs)
    write_run_record(run_dir, {"slug": slug, "owner": proc_id(os.getpid())})
    env_dir = run_dir / "env"
    env_dir.mkdir(mode=0o700)
    write_private(env_dir / "extravars", json.dumps({**public, **secret}))
    inventory_path = inventory(run_dir)
    outcome = Outcome()
    playbook_pid: list[int] = []

    def on_event(event: Mapping[str, Any]) -> bool:
        if not playbook_pid and isinstance(event.get("pid"), int):
            playbook_pid.append(event["pid"])
            write_run_record(run_dir, {"slug": slug, "owner": proc_id(os.getpid()),
                                        "playbook": proc_id(event["pid"])})  # fmt: skip
        _record(event, outcome, reporter, hidden)
        return True

    try:
        result = ansible_runner.run(
            private_data_dir=str(run_dir),
            project_dir=str(playbooks_dir),
            playbook=playbook,
            inventory=inventory_path,
            ident="run",
            quiet=True,
            suppress_env_files=True,
            event_handler=on_event,
            envvars=ansible_env(playbooks_dir, ansible_settings),
        )
    finally:
        scrub(run_dir, hidden)
    (run_dir / RUN_RECORD).unlink(missing_ok=True)  # ended here: nothing to settle
    for host, msg in outcome.unreachable:
        raise PlatformError(f"host {host} unreachable: {msg}")
    for host, task_name, msg in outcome.failures:
        raise PlatformError(f"{playbook} failed on host {host}, task {task_name!r}: {msg}")
    if result.rc != 0 or result.status != "successful":
        tail = scrubbed_tail(run_dir / "artifacts" / "run" / "stdout", hidden)
        raise PlatformError(
            f"{playbook} failed on {target} ({result.status}, rc {result.rc}): {tail}"
        )
    return outcome


def new_run_dir(runs: Path, slug: str, playbook: str, keep_runs: int) -> Path:
    """A new private directory in ``runs`` (sorted by time), dropping the oldest beyond
    ``keep_runs``."""
    runs.mkdir(parents=True, exist_ok=True, mode=0o700)
    kept = sorted((p for p in runs.iterdir() if p.is_dir()), key=lambda p: p.name)
    for old in kept[: max(0, len(kept) - keep_runs + 1)]:
        shutil.rmtree(old, ignore_errors=True)
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    name = f"{stamp}-{time.monotonic_ns() % 10**9:09d}-{slug}-{Path(playbook).stem}"
    path = runs / f"{name}-{_random.token_hex(3)}"
    path.mkdir(mode=0o700)
    return path


def _record(
    event: Mapping[str, Any], outcome: Outcome, reporter: Reporter, hidden: Sequence[str]
) -> None:
    kind = str(event.get("event", ""))
    data = event.get("event_data") or {}
    if kind == "playbook_on_stats":
        outcome.changed.update({str(h): int(n) for h, n in (data.get("changed") or {}).items()})
        for host in data.get("processed") or {}:
            outcome.changed.setdefault(str(host), 0)
        return
    if kind not in _STATUS:
        return
    host = str(data.get("host", "?"))
    task = str(data.get("task", "?"))
    res = data.get("res") or {}
    status = _STATUS[kind]
    if status == "ok" and res.get("changed"):
        status = "changed"
    detail = None
    if kind == "runner_on_unreachable":
        detail = mask(_message(res), hidden)
        outcome.unreachable.append((host, detail))
    elif kind == "runner_on_failed" and not data.get("ignore_errors"):
        detail = mask(_message(res), hidden)
        outcome.failures.append((host, task, detail))
    elif status in ("ok", "changed") and "censored" not in res:
        text = str(res.get("msg") or res.get("stdout") or "").strip()
        app_task = str(data.get("role", "")).startswith("app_")
        if text and app_task and str(data.get("task_action", "")).endswith(("debug", "command")):
            outcome.output.append(mask(text, hidden))
    reporter(Event(message=task, host=host, status=status, detail=detail))
