"""Benchmark the hosts platform: create a tenant, re-converge it, per SSH configuration.

    python bench/hosts_converge.py               # 4 SSH configurations + localhost
    python bench/hosts_converge.py --rounds 5 --no-local

Starts one SSH test host per configuration (network namespaces with sshd, the
``ssh_hosts`` test fixture, tests/fixtures/ssh_hosts.py; needs root) and, on each, creates
an OpenSlides 3.3 tenant through ``HostsPlatform`` as the engine does (``provision``,
``deploy``, ``migrate``, ``bootstrap-admin``; PostgreSQL, nginx, supervisord and the
shared virtualenv installed from the local wheelhouse, tests/hosts/helpers.py). Then
``deploy`` runs again ``--rounds`` times per configuration (must report ``changed=0``),
interleaved, the order rotating each round. Configurations:

- defaults: what osp-ops sets (``ANSIBLE_PIPELINING=1``) and Ansible's own ``ssh_args``
  (``-C -o ControlMaster=auto -o ControlPersist=60s``);
- no pipelining: ``ANSIBLE_PIPELINING=0`` (each module copied to the host, then run);
- no ControlPersist: ``ANSIBLE_SSH_ARGS="-C -o ControlMaster=no"`` (one SSH connection
  per task step);
- both off.

Every configuration keeps its ControlPersist sockets in the benchmark's directory
(``ANSIBLE_SSH_CONTROL_PATH_DIR``), and they are closed before every timed run: each run
starts without a master connection, as a reconcile minutes after the last one does.
The same tenant on localhost (``ansible_connection=local``) is the reference
without SSH (``--no-local`` leaves it out). CPU is this process and its children
(ansible-playbook, its workers, ssh): the controller's CPU over SSH, where the modules run
under the host's sshd (on the same 2 cores); on localhost the modules are children too.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from osp_ops.domain.catalog import default_catalog  # noqa: E402
from osp_ops.domain.spec import TenantSpec  # noqa: E402
from osp_ops.platforms.hosts import HostsPlatform  # noqa: E402
from osp_ops.settings import Settings  # noqa: E402
from tests.fixtures.procs import free_port  # noqa: E402
from tests.fixtures.ssh_hosts import SshHosts  # noqa: E402
from tests.hosts.helpers import (  # noqa: E402
    VERSION,
    Recorder,
    make_secrets,
    make_spec,
    stop_supervisord,
    wheelhouse,
)

NO_PERSIST = {"ANSIBLE_SSH_ARGS": "-C -o ControlMaster=no"}
CONFIGS: dict[str, dict[str, str]] = {
    "defaults": {},
    "no pipelining": {"ANSIBLE_PIPELINING": "0"},
    "no ControlPersist": dict(NO_PERSIST),
    "both off": {"ANSIBLE_PIPELINING": "0", **NO_PERSIST},
}
LOCAL = "localhost (local)"


def cpu() -> float:
    """CPU seconds of this process and its waited-for children (ansible-playbook, ssh)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


@dataclass
class Target:
    """One configuration: its platform, its tenant and what was measured."""

    name: str
    platform: HostsPlatform
    spec: TenantSpec
    secrets: dict[str, str]
    root: Path
    create: dict[str, float] = field(default_factory=dict)
    create_cpu: float = 0.0
    reconverge: list[float] = field(default_factory=list)
    reconverge_cpu: list[float] = field(default_factory=list)


@contextlib.contextmanager
def measured(out: dict[str, float], name: str) -> Iterator[None]:
    t0 = time.monotonic()
    yield
    out[name] = time.monotonic() - t0


def close_masters(cp_dir: Path) -> None:
    """Ask every ControlPersist master in cp_dir to exit (``ssh -O exit``)."""
    for sock in cp_dir.glob("*"):
        subprocess.run(
            ["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "bench-host"],
            capture_output=True, check=False, timeout=10,
        )  # fmt: skip


def create(t: Target) -> None:
    p, spec, sec, rec = t.platform, t.spec, t.secrets, Recorder()
    c0 = cpu()
    with measured(t.create, "provision"):
        p.provision(spec=spec, secrets=sec, reporter=rec)
    with measured(t.create, "deploy"):
        p.deploy(spec=spec, version=VERSION, secrets=sec, reporter=rec)
    with measured(t.create, "migrate"):
        p.run_task(spec=spec, version=VERSION, task="migrate", secrets=sec, reporter=rec)
    with measured(t.create, "bootstrap-admin"):
        p.run_task(spec=spec, version=VERSION, task="bootstrap-admin", secrets=sec, reporter=rec)
    t.create_cpu = cpu() - c0
    health = p.health(spec=spec)
    if not health.ok:
        raise SystemExit(f"{t.name}: the new tenant is not healthy: {health}")


def reconverge(t: Target) -> None:
    rec = Recorder()
    c0, t0 = cpu(), time.monotonic()
    change = t.platform.deploy(spec=t.spec, version=VERSION, secrets=t.secrets, reporter=rec)
    t.reconverge.append(time.monotonic() - t0)
    t.reconverge_cpu.append(cpu() - c0)
    if change.changed:
        changed = sorted({e.message for e in rec.changed()})
        raise SystemExit(f"{t.name}: re-converge changed {change.changed}: {changed}")


def table(targets: list[Target], rounds: int, load: str) -> str:
    base = targets[0]
    b_create = sum(base.create.values())
    b_re = statistics.median(base.reconverge)
    lines = [
        f"re-converge = `deploy` again (changed=0), median of {rounds}; load average {load}",
        "",
        "| configuration | create s | x defaults | re-converge s | x defaults | min-max s "
        "| CPU create s | CPU re-converge s |",
        "|---|---:|---:|---:|---:|---|---:|---:|",
    ]
    for t in targets:
        c = sum(t.create.values())
        r = statistics.median(t.reconverge)
        lines.append(
            f"| {t.name} | {c:.1f} | {c / b_create:.2f} | {r:.1f} | {r / b_re:.2f} "
            f"| {min(t.reconverge):.1f}-{max(t.reconverge):.1f} | {t.create_cpu:.1f} "
            f"| {statistics.median(t.reconverge_cpu):.1f} |"
        )
    lines += ["", "create by step (s): provision / deploy / migrate / bootstrap-admin"]
    for t in targets:
        steps = " / ".join(f"{t.create[s]:.1f}" for s in t.create)
        lines.append(f"- {t.name}: {steps}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3, help="re-converges per configuration")
    ap.add_argument(
        "--local",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also a tenant on localhost (connection local) as the reference",
    )
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("needs root (network namespaces, sshd, supervisord as root)")

    # Short paths: Unix sockets (PostgreSQL, apps, ssh masters) stay under 108 bytes.
    base = Path(tempfile.mkdtemp(prefix="osp-hc-", dir="/tmp"))
    base.chmod(0o755)
    cp_dir = base / "cp"
    cp_dir.mkdir(mode=0o700)
    wheels = str(wheelhouse())
    hosts = SshHosts(base / "ssh", count=len(CONFIGS))
    targets: list[Target] = []
    catalog = default_catalog()
    try:
        hosts.start()
        inv = hosts.inventory_dict()
        for h in inv["all"]["children"]["test_hosts"]["hosts"].values():
            h["app_openslides_wheelhouse"] = wheels
        inventory = base / "inventory.yaml"
        inventory.write_text(yaml.safe_dump(inv, sort_keys=False))
        # Ports are per namespace: any port free here is free inside the new namespaces.
        ports = {"http_port": free_port(), "https_port": free_port()}
        settings = Settings(data_dir=base / "data", inventory=inventory, **ports)
        for i, (name, extra) in enumerate(CONFIGS.items()):
            host = hosts.hosts[i]
            platform = HostsPlatform(
                settings=settings,
                catalog=catalog,
                ansible_settings={"ANSIBLE_SSH_CONTROL_PATH_DIR": str(cp_dir), **extra},
            )
            slug = f"hc{i}"
            spec = make_spec(slug, target=host.name)
            targets.append(Target(name, platform, spec, make_secrets(slug), host.root))
        if args.local:
            root = base / "local"
            root.mkdir(mode=0o755)
            local = Settings(data_dir=base / "data-local", host_root=str(root),
                             http_port=free_port(), https_port=free_port())  # fmt: skip
            platform = HostsPlatform(
                settings=local,
                catalog=catalog,
                local_vars={
                    "osp_postgresql_port": free_port(),
                    "app_openslides_wheelhouse": wheels,
                },
            )
            targets.append(Target(LOCAL, platform, make_spec("hcl"), make_secrets("hcl"), root))

        for t in targets:
            close_masters(cp_dir)
            create(t)
            print(f"create {t.name}: {sum(t.create.values()):.1f} s "
                  f"{ {k: round(v, 1) for k, v in t.create.items()} }", flush=True)  # fmt: skip
        for r in range(args.rounds):
            for t in targets[r % len(targets) :] + targets[: r % len(targets)]:
                close_masters(cp_dir)
                reconverge(t)
                print(f"re-converge {t.name}: {t.reconverge[-1]:.1f} s", flush=True)
        load = Path("/proc/loadavg").read_text().split()[:3]
        print()
        print(table(targets, args.rounds, " ".join(load)))
        if args.json:
            figures: dict[str, Any] = {
                t.name: {
                    "create_s": {k: round(v, 2) for k, v in t.create.items()},
                    "create_cpu_s": round(t.create_cpu, 2),
                    "reconverge_s": [round(v, 2) for v in t.reconverge],
                    "reconverge_cpu_s": [round(v, 2) for v in t.reconverge_cpu],
                }
                for t in targets
            }
            figures["loadavg"] = load
            args.json.write_text(json.dumps(figures, indent=2))
    finally:
        close_masters(cp_dir)
        for t in targets:
            stop_supervisord(t.root)
        hosts.stop()
        if not os.environ.get("OSP_OPS_KEEP_SERVICE_DIRS"):
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
