"""Crash safety and bad input of the hosts platform, through the real CLI.

One OpenSlides tenant (crashville) is created on localhost (connection local) under a
temporary host root, with its own ports and PostgreSQL port (host variables of a test
inventory), by ``osp-ops tenant create``. The CLI is killed with SIGKILL at every step
boundary of the ``create`` operation (``OSP_OPS_FAILPOINT``) and three times in the
middle of a playbook (initdb, pip install, admin bootstrap), where its ansible-playbook
lives on as an orphan. The kills form one chain: each rerun resumes at the first
unfinished step and is killed at the next point, so the whole costs about one create
plus a short resume per kill point.

The rerun is what a user does after a crash: the same ``tenant create`` command again
(it resumes the pending operation instead of starting another), or, once,
``osp-ops op retry ID``; no ``--wait``: the tenant's lease, held by a dead process of this
host, is taken over at once. The CLI runs as a user would run ``.venv/bin/osp-ops``: its
virtualenv is not on PATH.

The tests of this module run in order and share one host (module fixture ``host``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from osp_ops.domain.catalog import default_catalog
from osp_ops.engine.registry import load_kinds
from osp_ops.platforms.hosts import HostsPlatform
from osp_ops.settings import Settings
from tests.factories import hosts_spec
from tests.fixtures.procs import free_port
from tests.hosts.helpers import (
    VERSION,
    get,
    local_inventory,
    login,
    new_host_base,
    stop_supervisord,
    timed,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(2400)]

SLUG = "crashville"
OTHER = "lyon"
CREATE = ("tenant", "create", SLUG, "--app", "openslides", "--version", VERSION,
          "--name", "Ville de Crashville", "--admin-name", "Admin Crashville")  # fmt: skip
BOUNDARIES = ("before-step", "after-step", "step-recorded")
KINDS = load_kinds().kinds  # the kinds every context loads
# Kills in the middle of a step's playbook: the task whose start triggers the kill, and
# how long after it starts. The orphaned ansible-playbook goes on with that task.
DURING = {
    "provision": ("Initialize the PostgreSQL data directory.", 0.5),
    "deploy": ("Install OpenSlides' pinned package set into the virtualenv.", 5.0),
    "bootstrap-admin": ("Ensure the first administrator has the generated password.", 0.0),
}
# Playbook tasks whose change is recorded once however often their step runs; and
# those an orphaned playbook may have done unrecorded (their rerun then changes nothing).
ONCE = (
    "Ensure the tenant role and database exist, closed to PUBLIC.",
    "Ensure the tenant's vhost is present.",
    "Ensure the supervisord program is configured for osp-ops-app-crashville",
)
AT_MOST_ONCE = (
    "Initialize the PostgreSQL data directory.",
    "Install OpenSlides' pinned package set into the virtualenv.",
    "Ensure the first administrator has the generated password.",
)


@dataclass
class Host:
    base: Path
    root: Path
    data: Path
    tenants: Path
    env: dict[str, str]
    pg_port: int
    http_port: int
    https_port: int
    platform: HostsPlatform
    timings: dict[str, float] = field(default_factory=dict)
    op_id: str = ""
    kills: list[str] = field(default_factory=list)
    waited: list[str] = field(default_factory=list)  # steps whose rerun met a live orphan

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "osp_ops.cli", *args]

    def run(
        self, *args: str, failpoint: str | None = None, timeout: float = 900
    ) -> subprocess.CompletedProcess[str]:
        env = {**self.env, **({"OSP_OPS_FAILPOINT": failpoint} if failpoint else {})}
        return subprocess.run(
            self.argv(*args), env=env, cwd=self.base, capture_output=True, text=True,
            timeout=timeout, check=False,
        )  # fmt: skip

    def json(self, *args: str) -> Any:
        r = self.run(*args, "--json")
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    def operation(self) -> dict[str, Any]:
        return dict(self.json("op", "show", self.op_id))

    def steps(self) -> dict[str, str]:
        return {s["name"]: s["status"] for s in self.operation()["steps"]}

    @property
    def runs(self) -> Path:
        return self.data / "runs"


def _cli_env(base: Path, inventory: Path, http: int, https: int, root: Path) -> dict[str, str]:
    venv_bin = str(Path(sys.executable).parent)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OSP_OPS_")}
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "/usr/bin:/bin").split(os.pathsep) if p != venv_bin
    )
    env.update(
        OSP_OPS_DATA_DIR=str(base / "data"),
        OSP_OPS_TENANTS_DIR=str(base / "tenants"),
        OSP_OPS_INVENTORY=str(inventory),
        OSP_OPS_HOST_ROOT=str(root),
        OSP_OPS_HTTP_PORT=str(http),
        OSP_OPS_HTTPS_PORT=str(https),
        OSP_OPS_ACTOR="crash-test",
        COLUMNS="200",
    )
    return env


def _processes_with(needle: str) -> list[tuple[int, str]]:
    """(pid, argv) of every process whose command line holds ``needle``."""
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            argv = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if needle in argv:
            found.append((int(d.name), argv.strip()))
    return found


@pytest.fixture(scope="module")
def host() -> Iterator[Host]:
    base = new_host_base("osp-k-")
    root = base / "root"
    pg_port, http, https = free_port(), free_port(), free_port()
    inventory = local_inventory(base, http=http, https=https, pg_port=pg_port)
    settings = Settings(data_dir=base / "data", host_root=str(root), inventory=inventory,
                        http_port=http, https_port=https)  # fmt: skip
    h = Host(
        base=base,
        root=root,
        data=base / "data",
        tenants=base / "tenants",
        env=_cli_env(base, inventory, http, https, root),
        pg_port=pg_port,
        http_port=http,
        https_port=https,
        platform=HostsPlatform(settings=settings, catalog=default_catalog()),
    )
    try:
        yield h
    finally:
        stop_supervisord(root)
        # An orphaned ansible-playbook of a failed test: ours (its paths are under base).
        for pid, _ in _processes_with(f"{base}/"):
            with contextlib.suppress(OSError):
                os.killpg(os.getpgid(pid), signal.SIGKILL)
        if not os.environ.get("OSP_OPS_KEEP_SERVICE_DIRS"):
            subprocess.run(["rm", "-rf", str(base)], check=False)
        if h.timings:
            print("\nhosts crash timings:", {k: round(v, 1) for k, v in h.timings.items()})
            print("reruns that waited for an orphaned playbook:", h.waited)


# -- Crashes -----------------------------------------------------------------------


def _rerun(h: Host, failpoint: str) -> tuple[str, ...]:
    """The same command again; once (after the kill inside deploy) `op retry`."""
    return ("op", "retry", h.op_id) if failpoint == "after-step:deploy" else CREATE


def _kill_at(h: Host, failpoint: str) -> None:
    """Run the create with a failpoint armed; it must die by SIGKILL there."""
    argv = _rerun(h, failpoint)
    with timed(h.timings, failpoint):
        r = h.run(*argv, failpoint=failpoint)
    assert r.returncode == -signal.SIGKILL, (failpoint, r.returncode, r.stdout, r.stderr)
    if h.kills:
        assert "resuming pending operation" in r.stdout, r.stdout
    h.kills.append(failpoint)


def _events_mention(run_dir: Path, text: str) -> bool:
    for path in (run_dir / "artifacts" / "run" / "job_events").glob("*.json"):
        try:
            if text in path.read_text("utf-8"):
                return True
        except OSError:
            continue
    return False


def _kill_during(h: Host, step: str) -> Path:
    """Run the create and kill it ``delay`` seconds after ``task`` of ``step`` starts.

    Returns the run directory of the playbook that was cut off.
    """
    task, delay = DURING[step]
    before = set(h.runs.iterdir()) if h.runs.exists() else set()
    t0 = time.monotonic()
    proc = subprocess.Popen(h.argv(*CREATE), env=h.env, cwd=h.base, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    run_dir = None
    try:
        deadline = time.monotonic() + 600
        while run_dir is None:
            assert proc.poll() is None, f"the CLI ended before {task!r}: {proc.stdout.read()}"  # type: ignore[union-attr]
            assert time.monotonic() < deadline, f"{task!r} did not start"
            new = sorted(set(h.runs.iterdir()) - before) if h.runs.exists() else []
            run_dir = next((d for d in new if _events_mention(d, task)), None)
            time.sleep(0.2)
        time.sleep(delay)
    finally:
        proc.kill()
        out, _ = proc.communicate(timeout=60)
    h.timings[f"during:{step}"] = time.monotonic() - t0
    assert proc.returncode == -signal.SIGKILL, out
    assert f"-{SLUG}-" in run_dir.name
    h.kills.append(f"during:{step}")
    return run_dir


def _done_before(h: Host, step: str, *, including: bool) -> None:
    """The operation's steps before ``step`` are done, the later ones are not."""
    names = KINDS["create"].steps
    cut = names.index(step) + (1 if including else 0)
    steps = h.steps()
    assert [steps[n] for n in names[:cut]] == ["done"] * cut, steps
    assert "done" not in [steps[n] for n in names[cut:]], steps


def test_create_survives_kill_at_every_step_boundary_and_mid_playbook(host: Host) -> None:
    h = host
    for step in KINDS["create"].steps:
        for boundary in BOUNDARIES:
            if boundary == "after-step" and step in DURING:
                # Killed inside the step's playbook, then at after-step by the rerun.
                _check_orphan_is_settled(h, step, _kill_during(h, step))
            else:
                _kill_at(h, f"{boundary}:{step}")
            if not h.op_id:
                ops = h.json("op", "list", "--tenant", SLUG)
                assert len(ops) == 1 and ops[0]["kind"] == "create", ops
                h.op_id = ops[0]["id"]
            # Its holder is dead: shown as interrupted, never running (the lease tells).
            assert h.operation()["status"] == "interrupted"
            _done_before(h, step, including=boundary == "step-recorded")
    with timed(h.timings, "final rerun"):
        final = h.run(*CREATE)
    assert final.returncode == 0, (final.stdout, final.stderr)
    assert "resuming pending operation" in final.stdout
    assert f"create {SLUG}: succeeded" in final.stdout
    assert len(h.kills) == 3 * len(KINDS["create"].steps) + len(DURING)


def _check_orphan_is_settled(h: Host, step: str, run_dir: Path) -> None:
    """The next run (killed at after-step:<step>) lets the orphan end, then scrubs it."""
    failpoint = f"after-step:{step}"
    with timed(h.timings, f"{failpoint} (after the orphan)"):
        r = h.run(*_rerun(h, failpoint), failpoint=failpoint)
    assert r.returncode == -signal.SIGKILL, (r.stdout, r.stderr)
    h.kills.append(failpoint)
    if "waiting for the interrupted run" in " ".join(r.stdout.split()):
        h.waited.append(step)
    assert _processes_with(f"{run_dir}/") == [], "the orphaned ansible-playbook still runs"
    assert not (run_dir / "env").exists(), "the interrupted run's secrets file was kept"
    assert not (run_dir / "osp-run.json").exists(), "the interrupted run was not settled"
    # The rerun's playbook began after the orphan's last event: they never overlapped.
    later = sorted(d for d in h.runs.iterdir() if d.name > run_dir.name and f"-{SLUG}-" in d.name)
    assert later, "the rerun ran no playbook"
    assert min(_event_times(later[0])) >= max(_event_times(run_dir))
    _done_before(h, step, including=False)


def _event_times(run_dir: Path) -> list[str]:
    times = []
    for path in (run_dir / "artifacts" / "run" / "job_events").glob("*.json"):
        with contextlib.suppress(OSError, ValueError, KeyError):
            times.append(json.loads(path.read_text("utf-8"))["created"])
    assert times, f"no events in {run_dir}"
    return times


def test_rerun_converged_to_one_of_everything(host: Host) -> None:
    h, root = host, host.root
    assert sorted(p.name for p in (root / "etc/osp-ops/nginx/sites").iterdir()) == [f"{SLUG}.conf"]
    names = [
        line for p in (root / "etc/osp-ops/nginx").rglob("*.conf")
        for line in p.read_text().splitlines() if re.search(rf"server_name\s.*{SLUG}\.", line)
    ]  # fmt: skip
    assert len(names) == 2, names  # the HTTPS server and the HTTP redirect
    assert sorted(p.name for p in (root / "etc/osp-ops/supervisor.d").iterdir()) == [
        f"osp-ops-app-{SLUG}.conf", "osp-ops-nginx.conf", "osp-ops-postgresql.conf"
    ]  # fmt: skip
    assert _psql(h, "SELECT datname FROM pg_database WHERE datname LIKE 'osp%'") == [f"osp_{SLUG}"]
    assert _psql(h, "SELECT rolname FROM pg_roles WHERE rolname LIKE 'osp%'") == [f"osp_{SLUG}"]
    # One administrator, bootstrapped once: no second user from a repeated bootstrap.
    assert _psql(h, "SELECT username FROM users_user", db=f"osp_{SLUG}") == ["admin"]
    status = subprocess.run(
        ["supervisorctl", "-c", str(root / "etc/osp-ops/supervisord.conf"), "status"],
        capture_output=True, text=True, check=False,
    ).stdout.splitlines()  # fmt: skip
    assert sorted(line.split()[:2] for line in status) == [
        [f"osp-ops-app-{SLUG}", "RUNNING"], ["osp-ops-nginx", "RUNNING"],
        ["osp-ops-postgresql", "RUNNING"],
    ], status  # fmt: skip
    tenant_dir = f"{root}/srv/osp-ops/{SLUG}/"
    apps = [p for p in _processes_with(tenant_dir) if "daphne" in p[1]]
    assert len(apps) == 1, apps
    supervisors = [p for p in _processes_with(f"{root}/etc/osp-ops/supervisord.conf")
                   if "supervisord " in p[1]]  # fmt: skip
    assert len(supervisors) == 1, supervisors
    postmasters = [p for p in _processes_with(f"{root}/var/lib/osp-ops/postgresql")
                   if p[1].split()[0].endswith("/postgres")]  # fmt: skip
    assert len(postmasters) == 1, postmasters
    assert len([p for p in _processes_with(str(root)) if "nginx: master" in p[1]]) == 1
    # Nothing of an interrupted run is left: no orphan, no secrets file, no run record.
    assert _processes_with(f"{h.runs}/") == []
    assert list(h.runs.glob("*/env")) == []
    assert list(h.runs.glob("*/osp-run.json")) == []
    assert not (root / f"srv/osp-ops/{SLUG}/run/restart-pending").exists()


def test_instance_answers_and_admin_logs_in(host: Host) -> None:
    h = host
    spec = hosts_spec(SLUG)
    r = get(h.platform, spec, "/", port=h.https_port)
    assert r.status_code == 200
    assert "<app-root" in r.text or "OpenSlides" in r.text
    creds = h.json("tenant", "credentials", SLUG)
    who = login(h.platform, spec, creds["password"], address="127.0.0.1", port=h.https_port)
    user = who["user"]  # served from the app's element cache: restarted after the bootstrap
    assert f"{user['first_name']} {user['last_name']}".strip() == "Admin Crashville"


def test_operation_succeeded_once_and_tenant_is_ready(host: Host) -> None:
    h = host
    shown = h.json("tenant", "show", SLUG)
    assert shown["phase"] == "ready" and shown["observed_version"] == VERSION, shown
    assert shown["health"]["ok"], shown["health"]
    ops = h.json("op", "list", "--tenant", SLUG)
    assert [(o["id"], o["kind"], o["status"]) for o in ops] == [(h.op_id, "create", "succeeded")]
    op = h.operation()
    assert [s["status"] for s in op["steps"]] == ["done"] * len(KINDS["create"].steps)
    # Each step ran at most twice: once cut off after its effect, once to its record.
    attempts = {s["name"]: s["attempts"] for s in op["steps"]}
    assert all(1 <= n <= 3 for n in attempts.values()), attempts
    changed: dict[str, int] = {}
    for e in op["events"]:
        if e["status"] == "changed":
            changed[e["message"]] = changed.get(e["message"], 0) + 1
    assert {t: changed.get(t, 0) for t in ONCE} == dict.fromkeys(ONCE, 1), changed
    assert all(changed.get(t, 0) <= 1 for t in AT_MOST_ONCE), changed
    audit = h.json("audit", "list", "--tenant", SLUG, "--limit", "500")
    actions = [a["action"] for a in audit]
    assert actions.count("create.requested") == 1, actions
    assert actions.count("create.start") == 1, actions
    assert actions.count("create.succeeded") == 1, actions
    assert "create.failed" not in actions, actions
    # Every run after the first resumed; `op retry` records its own entry.
    assert actions.count("create.resume") == len(h.kills), actions
    assert actions.count("operation.retry") == 1, actions
    verify = h.run("audit", "verify")
    assert verify.returncode == 0, verify.stdout


# -- Bad input -----------------------------------------------------------------------


def _nothing_created(h: Host, before: dict[str, Any]) -> None:
    """No trace of the refused tenant OTHER, and the host is as it was."""
    assert (h.tenants / f"{OTHER}.yaml").exists() == before["spec_file"]
    listed = {t["slug"]: t["phase"] for t in h.json("tenant", "list")}
    assert listed.get(OTHER, "not created") == "not created", listed  # no tenant row
    # No tenant row, so no operation either. A slug with neither a row nor a spec file
    # is "not found" (exit 3); one whose spec file exists is known and has no operation.
    r = h.run("op", "list", "--tenant", OTHER, "--json")
    if before["spec_file"]:
        assert r.returncode == 0 and json.loads(r.stdout) == [], (r.stdout, r.stderr)
    else:
        assert r.returncode == 3 and f"no tenant '{OTHER}'" in r.stderr, (r.stdout, r.stderr)
    assert _snapshot(h) == before["host"]


def _snapshot(h: Host) -> dict[str, Any]:
    return {
        "runs": sorted(p.name for p in h.runs.iterdir()),
        "srv": sorted(p.name for p in (h.root / "srv/osp-ops").iterdir()),
        "sites": sorted(p.name for p in (h.root / "etc/osp-ops/nginx/sites").iterdir()),
        "tls": sorted(p.name for p in (h.root / "etc/osp-ops/nginx/tls").iterdir()),
        "programs": sorted(p.name for p in (h.root / "etc/osp-ops/supervisor.d").iterdir()),
        "pgpass": sorted(p.name for p in (h.root / "var/lib/osp-ops/postgresql").glob("*.pgpass")),
        "ca": sorted(p.name for p in (h.data / "ca").rglob("*")),
        "databases": _psql(h, "SELECT datname FROM pg_database ORDER BY 1"),
        "roles": _psql(h, "SELECT rolname FROM pg_roles ORDER BY 1"),
        "operations": len(h.json("op", "list", "--limit", "1000")),
        "tenants": [t["slug"] for t in h.json("tenant", "list") if t["phase"] != "not created"],
    }


def _refused(r: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert lines[0].startswith("Error: "), r.stderr
    assert "Traceback" not in r.stderr
    # One problem, one line: the Error line names the field.
    assert not any(line.startswith("  - ") for line in lines[1:]), r.stderr
    assert all(n in lines[0] for n in needles), r.stderr


@pytest.fixture
def before(host: Host) -> dict[str, Any]:
    return {"host": _snapshot(host), "spec_file": False}


def test_create_with_a_colliding_host_name_is_refused(host: Host, before: dict[str, Any]) -> None:
    r = host.run("tenant", "create", OTHER, "--version", VERSION, "--host", f"{SLUG}.localhost")
    _refused(r, "hosts", f"{SLUG}.localhost", f"{SLUG}.yaml")
    _nothing_created(host, before)


def test_create_with_an_unknown_version_is_refused(host: Host, before: dict[str, Any]) -> None:
    r = host.run("tenant", "create", OTHER, "--version", "9.9")
    _refused(r, "app.version", "'9.9' is not in the catalog")
    _nothing_created(host, before)


@pytest.mark.parametrize(
    ("change", "needles"),
    [
        ({"hosts": {"primary": f"{SLUG}.localhost"}}, ("hosts", f"{SLUG}.localhost")),
        ({"app": {"name": "openslides", "version": "9.9"}}, ("app.version", "'9.9'")),
    ],
    ids=["host-collision", "unknown-version"],
)
def test_apply_of_a_bad_spec_file_is_refused(
    host: Host, before: dict[str, Any], change: dict[str, Any], needles: tuple[str, ...]
) -> None:
    spec = {**hosts_spec(OTHER).model_dump(mode="json"), **change}
    path = host.tenants / f"{OTHER}.yaml"
    path.write_text(yaml.safe_dump(spec))
    try:
        before["spec_file"] = True
        r = host.run("tenant", "apply", OTHER)
        _refused(r, *needles)
        _nothing_created(host, before)
    finally:
        path.unlink()
    assert host.json("tenant", "show", SLUG, "--no-health")["phase"] == "ready"


def _psql(h: Host, sql: str, *, db: str = "postgres") -> list[str]:
    out = subprocess.run(
        ["runuser", "-u", "postgres", "--", "psql", "-h", str(h.root / "run/osp-ops/postgresql"),
         "-p", str(h.pg_port), "-d", db, "-Atc", sql],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return out.stdout.split()
