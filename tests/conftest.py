"""Session-scoped real services for the tests (see docs/testing.md).

Fixtures:
- ``postgres`` -> PostgresServer: ``dsn`` (superuser), ``host``, ``port``, ``user``,
  ``password``, ``dsn_for(db)``, ``create_database(name=None) -> dsn``.
- ``s3`` -> MinioServer: ``endpoint_url``, ``access_key``, ``secret_key``, ``region``,
  ``bucket`` (object lock + versioning), ``client()``, ``create_bucket()``, ``env``.
- ``kube`` -> KubeCluster: ``kubeconfig`` (admin), ``server``, ``ca_file``,
  ``node_names``, ``api_client()``, ``kubeconfig_for_service_account(ns, name)``.
- ``ssh_hosts`` -> factory ``(count=2) -> SshHosts``: ``hosts`` (``name``, ``address``,
  ``root``), ``inventory`` (YAML path), ``inventory_dict()``, ``private_key``.

A service that cannot start (binary missing, ...) FAILS the test that asked for it.

Markers follow from these fixtures (tests/fixtures/markers.py): a test that uses
``kube`` is ``k8s``, ``ssh_hosts`` ``e2e``, ``postgres`` or ``s3`` ``integration``, even
through other fixtures; a test marked ``unit`` that uses one of them fails.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol, TypeVar

import hypothesis
import pytest

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.fixtures.kube import KubeCluster  # noqa: E402
from tests.fixtures.markers import (  # noqa: E402, F401 (hooks: markers follow the fixtures)
    _markers_match_services,
    pytest_collection_modifyitems,
    pytest_runtest_setup,
)
from tests.fixtures.minio import MinioServer  # noqa: E402
from tests.fixtures.postgres import PostgresServer  # noqa: E402
from tests.fixtures.procs import ServiceError  # noqa: E402
from tests.fixtures.ssh_hosts import SshHosts  # noqa: E402

# Tools installed in the venv (ansible-playbook, ...) must be found by subprocesses.
_venv_bin = str(Path(sys.executable).parent)
if _venv_bin not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = _venv_bin + os.pathsep + os.environ.get("PATH", "")

# No per-example deadline: on a loaded 2-core machine it measures the machine, not the
# code (performance lives in bench/, never in timed assertions).
hypothesis.settings.register_profile("osp-ops", deadline=None)
hypothesis.settings.load_profile("osp-ops")

START_TIMES: dict[str, float] = {}


class _Service(Protocol):
    start_seconds: float

    def stop(self) -> None: ...


S = TypeVar("S", bound=_Service)


def service_dir(name: str) -> Path:
    """A fresh directory for a service, readable by other users (postgres runs as postgres)."""
    path = Path(tempfile.mkdtemp(prefix=f"osp-ops-{name}-"))
    path.chmod(0o755)
    return path


def _remove(path: Path) -> None:
    if not os.environ.get("OSP_OPS_KEEP_SERVICE_DIRS"):
        shutil.rmtree(path, ignore_errors=True)


def run_service(name: str, svc: S, start: Callable[[], object]) -> S:
    try:
        start()
    except ServiceError as e:
        pytest.fail(f"{name} could not start: {e}", pytrace=False)
    START_TIMES[name] = svc.start_seconds
    return svc


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    base = service_dir("pg")
    srv = PostgresServer(base)
    try:
        yield run_service("postgres", srv, srv.start)
    finally:
        srv.stop()
        _remove(base)


@pytest.fixture(scope="session")
def s3() -> Iterator[MinioServer]:
    base = service_dir("minio")
    srv = MinioServer(base)
    try:
        yield run_service("minio", srv, srv.start)
    finally:
        srv.stop()
        _remove(base)


@pytest.fixture(scope="session")
def kube() -> Iterator[KubeCluster]:
    base = service_dir("kube")
    cluster = KubeCluster(base)
    try:
        yield run_service("kube", cluster, cluster.start)
    finally:
        cluster.stop()
        _remove(base)


@pytest.fixture(scope="session")
def ssh_hosts() -> Iterator[Callable[..., SshHosts]]:
    """Factory: ``ssh_hosts(count=2)`` starts that many new hosts for the session."""
    made: list[SshHosts] = []

    def make(count: int = 2) -> SshHosts:
        hosts = SshHosts(service_dir("ssh"), count=count)
        made.append(hosts)
        run_service(f"ssh_hosts[{len(made)}]", hosts, hosts.start)
        return hosts

    try:
        yield make
    finally:
        for hosts in made:
            hosts.stop()
            _remove(hosts.base)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if START_TIMES:
        times = ", ".join(f"{k} {v:.1f}s" for k, v in START_TIMES.items())
        terminalreporter.write_line(f"service start times: {times}")
