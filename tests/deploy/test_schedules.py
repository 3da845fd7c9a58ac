"""The scheduled jobs shipped in deploy/: systemd units and Kubernetes CronJobs.

Checks that each runs a command the osp-ops CLI accepts, that systemd accepts the units
(`systemd-analyze verify`) and their calendars, and that the CronJobs are accepted by the
test cluster with pods that pass the `restricted` Pod Security level.
"""

from __future__ import annotations

import configparser
import secrets
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from tests.fixtures.kube import KubeCluster

REPO = Path(__file__).resolve().parents[2]
SYSTEMD = REPO / "deploy" / "systemd"
CRONJOBS = REPO / "deploy" / "kubernetes" / "cronjobs.yaml"


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
