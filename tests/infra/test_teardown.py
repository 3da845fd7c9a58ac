"""Stopping a service leaves no process and no network namespace behind."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.fixtures.kube import KubeCluster
from tests.fixtures.minio import MinioServer
from tests.fixtures.postgres import PostgresServer
from tests.fixtures.procs import pid_alive
from tests.fixtures.ssh_hosts import SshHosts, netns_list

pytestmark = [pytest.mark.infra]


def processes_mentioning(text: str) -> list[int]:
    """PIDs whose command line contains text (e.g. a service's directory)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in cmdline and pid_alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def fresh_dir(name: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix=f"osp-ops-teardown-{name}-"))
    path.chmod(0o755)
    return path


@pytest.mark.integration
def test_postgres_minio_ssh_hosts_stop_cleanly() -> None:
    pg = PostgresServer(fresh_dir("pg")).start()
    s3 = MinioServer(fresh_dir("minio")).start()
    hosts = SshHosts(fresh_dir("ssh"), count=2).start()
    pids = [pg.pid, s3.pid, *(h.pid for h in hosts.hosts)]
    namespaces = [h.netns for h in hosts.hosts]
    assert all(pid and pid_alive(pid) for pid in pids)
    assert set(namespaces) <= set(netns_list())
    # postgres forks backends; they mention the data directory via the postmaster only,
    # so look for children by parent PID as well.
    pg_children = [
        int(p.name) for p in Path("/proc").iterdir()
        if p.name.isdigit() and _ppid(p) == pg.pid
    ]  # fmt: skip
    assert pg_children, "postgres should have auxiliary processes"

    pg.stop()
    s3.stop()
    hosts.stop()

    assert not [pid for pid in pids if pid and pid_alive(pid)], "a service outlived stop()"
    assert not [pid for pid in pg_children if pid_alive(pid)]
    for svc_dir in (pg.base, s3.base, hosts.base):
        assert processes_mentioning(str(svc_dir)) == []
    assert not set(namespaces) & set(netns_list())
    links = Path("/sys/class/net")
    assert not [h.veth for h in hosts.hosts if (links / h.veth).exists()]
    for svc_dir in (pg.base, s3.base, hosts.base):
        shutil.rmtree(svc_dir)


@pytest.mark.k8s
def test_kube_stops_cleanly() -> None:
    cluster = KubeCluster(fresh_dir("kube")).start()
    pids = cluster.pids
    assert set(pids) == {"etcd", "kube-apiserver", "kube-controller-manager",
                         "kube-scheduler", "kwok"}  # fmt: skip
    assert all(pid_alive(pid) for pid in pids.values())
    cluster.stop()
    assert not [name for name, pid in pids.items() if pid_alive(pid)]
    assert processes_mentioning(str(cluster.base)) == []
    shutil.rmtree(cluster.base)


def _ppid(proc_dir: Path) -> int:
    try:
        stat = (proc_dir / "stat").read_text()
    except OSError:
        return -1
    return int(stat.rsplit(")", 1)[1].split()[1])
