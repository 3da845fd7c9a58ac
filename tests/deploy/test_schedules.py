"""The scheduled jobs shipped in deploy/: systemd units and Kubernetes CronJobs.

Checks that each runs a command the osp-ops CLI accepts, that systemd accepts the units
(`systemd-analyze verify`) and their calendars, and that the CronJobs are accepted by the
test cluster with pods that pass the `restricted` Pod Security level.
"""

from __future__ import annotations

import configparser
import os
import re
import secrets
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from kubernetes import client

from osp_ops.backups import list_backups
from osp_ops.domain.names import db_name_for
from osp_ops.engine import backup_access
from osp_ops.engine.api import request_converge
from osp_ops.engine.context import build_context
from osp_ops.engine.runner import run_operation
from osp_ops.platforms.fake import JournalFakePlatform
from osp_ops.platforms.pgtenant import TenantDatabases
from osp_ops.settings import load_settings
from osp_ops.store.backups import Backups
from tests.factories import make_spec
from tests.fixtures.kube import KubeCluster
from tests.fixtures.postgres import PostgresServer

REPO = Path(__file__).resolve().parents[2]
SYSTEMD = REPO / "deploy" / "systemd"
CRONJOBS = REPO / "deploy" / "kubernetes" / "cronjobs.yaml"
RUNBOOK = REPO / "docs" / "operations.md"


def _units() -> list[Path]:
    return sorted(p for p in SYSTEMD.iterdir() if p.suffix in (".service", ".timer"))


def _unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(path)
    return parser


def _cli_accepts(args: list[str]) -> None:
    """The CLI parses these arguments (``--help`` stops before anything runs)."""
    proc = subprocess.run(
        [sys.executable, "-m", "osp_ops.cli", *args, "--help"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, (
        f"osp-ops {' '.join(args)}: {proc.stdout[-500:]}{proc.stderr[-500:]}"
    )


def _cronjobs() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(CRONJOBS.read_text()) if d]


@pytest.mark.unit
def test_every_service_has_a_timer_or_runs_forever() -> None:
    services = {p.stem for p in SYSTEMD.glob("*.service")}
    timers = {p.stem for p in SYSTEMD.glob("*.timer")}
    assert timers <= services
    for stem in services - timers:
        assert _unit(SYSTEMD / f"{stem}.service")["Service"]["Type"] == "simple"


@pytest.mark.integration
@pytest.mark.parametrize("unit", [p.name for p in SYSTEMD.glob("*.service")])
def test_service_runs_a_command_the_cli_accepts(unit: str) -> None:
    argv = shlex.split(_unit(SYSTEMD / unit)["Service"]["ExecStart"])
    assert argv[0] == "/usr/local/bin/osp-ops"
    _cli_accepts(argv[1:])


@pytest.mark.integration
@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_systemd_accepts_the_units_and_calendars(tmp_path: Path) -> None:
    # verify checks that ExecStart exists: point it at this checkout's osp-ops.
    exe = Path(sys.executable).parent / "osp-ops"
    for p in _units():
        text = p.read_text().replace("/usr/local/bin/osp-ops", str(exe))
        (tmp_path / p.name).write_text(text)
    proc = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *sorted(str(p) for p in tmp_path.iterdir())],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0 and not proc.stderr.strip(), proc.stderr
    for p in SYSTEMD.glob("*.timer"):
        calendar = _unit(p)["Timer"]["OnCalendar"]
        out = subprocess.run(
            ["systemd-analyze", "calendar", calendar], capture_output=True, text=True, check=False
        )
        assert out.returncode == 0 and "Next elapse" in out.stdout, (p.name, out.stderr)


@pytest.mark.integration
@pytest.mark.parametrize("name", [d["metadata"]["name"] for d in _cronjobs()])
def test_cronjob_runs_a_command_the_cli_accepts(name: str) -> None:
    job = next(d for d in _cronjobs() if d["metadata"]["name"] == name)
    container = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    _cli_accepts(container["args"])


@pytest.mark.k8s
def test_cronjobs_are_accepted_and_their_pods_are_restricted(kube: KubeCluster) -> None:
    ns = f"schedules-{secrets.token_hex(3)}"
    with kube.api_client() as api:
        core, batch = client.CoreV1Api(api), client.BatchV1Api(api)
        core.create_namespace(
            {"metadata": {"name": ns, "labels": {
                "pod-security.kubernetes.io/enforce": "restricted"}}}
        )  # fmt: skip
        try:
            core.create_namespaced_service_account(ns, {"metadata": {"name": "osp-ops"}})
            for job in _cronjobs():
                job = {**job, "metadata": {**job["metadata"], "namespace": ns}}
                created = batch.create_namespaced_cron_job(ns, job)
                assert created.spec.concurrency_policy == "Forbid"
                # Admission of the pod the Job would create (enforce=restricted).
                pod = {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {"name": job["metadata"]["name"], "namespace": ns},
                    "spec": job["spec"]["jobTemplate"]["spec"]["template"]["spec"],
                }
                core.create_namespaced_pod(ns, pod, dry_run="All")
            names = sorted(c.metadata.name for c in batch.list_namespaced_cron_job(ns).items)
            assert names == sorted(d["metadata"]["name"] for d in _cronjobs())
        finally:
            core.delete_namespace(ns)


# -- every scheduled command, run as shipped, from / -----------------------------------

Job = tuple[dict[str, str], list[str]]  # (environment it sets, argv after `osp-ops`)


def _systemd_jobs() -> list[Job]:
    jobs = []
    for p in sorted(SYSTEMD.glob("*.service")):
        service = _unit(p)["Service"]
        if service.get("Type") == "simple":
            continue  # the worker runs forever; its one-shot form is the cron line
        env = dict(v.split("=", 1) for v in shlex.split(service.get("Environment", "")))
        jobs.append((env, shlex.split(service["ExecStart"])[1:]))
    return jobs


def _cronjob_jobs() -> list[Job]:
    jobs = []
    for job in _cronjobs():
        container = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e["value"] for e in container.get("env", [])}
        jobs.append((env, list(container["args"])))
    return jobs


def _runbook_jobs() -> list[Job]:
    block = RUNBOOK.read_text().split("```cron\n", 1)[1].split("```", 1)[0]
    env: dict[str, str] = {}
    jobs = []
    for line in block.splitlines():
        line = line.split("#", 1)[0].strip()
        if m := re.fullmatch(r"([A-Z_]+)=(\S+)", line):
            env[m[1]] = m[2]
        elif line:
            argv = shlex.split(line)[5:]  # five time fields, then the command
            assert argv[0] == "osp-ops", line
            jobs.append((dict(env), argv[1:]))
    return jobs


SCHEDULES = {"systemd": _systemd_jobs, "kubernetes": _cronjob_jobs, "runbook": _runbook_jobs}


@pytest.mark.integration
@pytest.mark.parametrize("source", sorted(SCHEDULES))
def test_scheduled_commands_run_from_root_and_take_the_due_backup(
    source: str, tmp_path: Path, postgres: PostgresServer
) -> None:
    """Each job as shipped (its argv and environment; paths mapped into this test's world),
    started in `/` as cron and systemd do: every job succeeds and the due backup is taken."""
    checkout, data = tmp_path / "srv", tmp_path / "srv" / "data"
    checkout.mkdir()
    (checkout / "osp-ops.yaml").write_text(
        f"data_dir: data\nplatform_db_admin_dsn: {postgres.dsn}\nretry_base_delay: 0\n"
    )
    journal = str(tmp_path / "fake.json")
    slug = f"s{secrets.token_hex(3)}"
    settings = load_settings(checkout / "osp-ops.yaml")[0]
    ctx = build_context(
        settings, actor="test", platform_factory=lambda _s: JournalFakePlatform(path=journal)
    )
    spec = make_spec(slug, platform="kubernetes")
    ctx.specs.write(spec)
    assert run_operation(ctx, request_converge(ctx, spec)[0].id).status == "succeeded"
    password = ctx.secrets.get(slug, "db_password")
    dbs = TenantDatabases(postgres.dsn)
    try:
        dbs.ensure(slug, password)
    finally:
        dbs.close()
    tenant_dsn = postgres.dsn_for(db_name_for(slug), user=db_name_for(slug), password=password)
    with psycopg.connect(tenant_dsn, autocommit=True) as conn:
        for table in backup_access.main_tables(ctx, spec):
            conn.execute(f"CREATE TABLE {table} (id serial PRIMARY KEY, body text)")
            conn.execute(f"INSERT INTO {table} (body) VALUES ('one row')")

    where = {  # the shipped paths, in this world
        "/srv/osp-ops": str(checkout),
        "/etc/osp-ops/tenants": str(checkout / "tenants"),
        "/etc/osp-ops/keys": str(data),
        "/var/lib/osp-ops": str(data),
    }
    base = {k: v for k, v in os.environ.items() if not k.startswith("OSP_OPS_")}
    base["OSP_OPS_FAKE_PLATFORM_JOURNAL"] = journal
    base["OSP_OPS_PLATFORM"] = "osp_ops.platforms.fake:journal_platform"
    if source == "kubernetes":  # what the Secret osp-ops-settings holds
        base["OSP_OPS_PLATFORM_DB_ADMIN_DSN"] = postgres.dsn
        base["OSP_OPS_RETRY_BASE_DELAY"] = "0"
    exe = str(Path(sys.executable).parent / "osp-ops")
    ran = []
    for env, argv in SCHEDULES[source]():
        for shipped, here in where.items():
            env = {k: v.replace(shipped, here) for k, v in env.items()}
        proc = subprocess.run(
            [exe, *argv], env=base | env, cwd="/", capture_output=True, text=True,
            timeout=300, check=False,
        )  # fmt: skip
        assert proc.returncode == 0, (argv, proc.stdout[-800:], proc.stderr[-800:])
        ran.append(argv[:2])
    assert ["backup", "run"] in ran
    backups = list_backups(
        backup_access.store_for(ctx), slug, mac_key=backup_access.known_mac_key(ctx, slug)
    )
    assert [b.state for b in backups] == ["complete"]
    assert Backups(ctx.db).verified_ids(slug) == {backups[0].backup_id}
