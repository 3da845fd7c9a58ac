"""The hosts platform's tenant databases (role ``postgresql_tenant``) on a real osp-ops
cluster under a temporary host root: provision writes the tenant's ownership mark and
refuses a role or database without it, remove drops only what carries it, and a tenant's
role connects to its own database only."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from osp_ops.domain.catalog import default_catalog
from osp_ops.domain.errors import PlatformError
from osp_ops.platforms.hosts import HostsPlatform
from osp_ops.settings import Settings
from tests.factories import hosts_spec
from tests.fixtures.procs import free_port
from tests.hosts.helpers import Recorder, make_secrets, new_host_base, stop_supervisord

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]


@dataclass
class Cluster:
    root: Path
    port: int
    platform: HostsPlatform

    def psql(self, query: str) -> list[str]:
        """Rows of ``query`` run as postgres over the cluster's socket."""
        out = subprocess.run(
            ["runuser", "-u", "postgres", "--", "psql", "-h", str(self.root / "run/osp-ops/postgresql"),
             "-p", str(self.port), "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-Atc", query],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        return out.stdout.splitlines()

    def connects(self, db: str, user: str, password: str) -> bool:
        dsn = f"host=127.0.0.1 port={self.port} dbname={db} user={user} password={password}"
        try:
            psycopg.connect(dsn, connect_timeout=5).close()
        except psycopg.OperationalError:
            return False
        return True


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    base = new_host_base("osp-i-")
    root, port = base / "root", free_port()
    settings = Settings(
        data_dir=base / "data", host_root=str(root), http_port=free_port(), https_port=free_port()
    )
    platform = HostsPlatform(
        settings=settings, catalog=default_catalog(), local_vars={"osp_postgresql_port": port}
    )
    try:
        yield Cluster(root, port, platform)
    finally:
        stop_supervisord(root)
        if not os.environ.get("OSP_OPS_KEEP_SERVICE_DIRS"):
            subprocess.run(["rm", "-rf", str(base)], check=False)


def test_provision_marks_and_confines_the_tenant(cluster: Cluster) -> None:
    secrets = {s: make_secrets(s) for s in ("nanterre", "lyon")}
    for slug, sec in secrets.items():
        cluster.platform.provision(
            spec=hosts_spec(slug), secrets=sec, reporter=Recorder(), tenant_id=f"id-{slug}"
        )
    marks = cluster.psql(
        "SELECT rolname || '=' || shobj_description(oid, 'pg_authid') FROM pg_roles"
        " WHERE rolname LIKE 'osp\\_%' ORDER BY 1"
    )
    assert marks == [
        "osp_lyon=osp-ops tenant lyon id-lyon",
        "osp_nanterre=osp-ops tenant nanterre id-nanterre",
    ]
    again = cluster.platform.provision(
        spec=hosts_spec("lyon"), secrets=secrets["lyon"], reporter=Recorder(), tenant_id="id-lyon"
    )
    assert again.changed == 0
    pw = secrets["nanterre"]["db_password"]
    assert cluster.connects("osp_nanterre", "osp_nanterre", pw)
    for other in ("osp_lyon", "postgres", "template1"):
        assert not cluster.connects(other, "osp_nanterre", pw), other


def test_a_foreign_role_and_database_are_neither_adopted_nor_dropped(cluster: Cluster) -> None:
    cluster.psql("CREATE ROLE osp_grenoble LOGIN PASSWORD 'theirs'")
    cluster.psql("CREATE DATABASE osp_grenoble OWNER osp_grenoble")
    before = cluster.psql(
        "SELECT pg_get_userbyid(datdba) || ' ' || coalesce(datacl::text, '') FROM pg_database"
        " WHERE datname = 'osp_grenoble'"
    )
    spec = hosts_spec("grenoble")
    with pytest.raises(PlatformError, match="is not this tenant's"):
        cluster.platform.provision(
            spec=spec, secrets=make_secrets("grenoble"), reporter=Recorder(), tenant_id="id-g"
        )
    with pytest.raises(PlatformError, match="is not this tenant's"):
        cluster.platform.destroy(spec=spec, reporter=Recorder(), tenant_id="id-g")
    assert (
        cluster.psql(
            "SELECT pg_get_userbyid(datdba) || ' ' || coalesce(datacl::text, '') FROM pg_database"
            " WHERE datname = 'osp_grenoble'"
        )
        == before
    )
    assert cluster.connects("osp_grenoble", "osp_grenoble", "theirs")


def test_remove_drops_only_the_tenant_of_the_mark(cluster: Cluster) -> None:
    spec = hosts_spec("lyon")
    with pytest.raises(PlatformError, match="is not this tenant's"):
        cluster.platform.destroy(spec=spec, reporter=Recorder(), tenant_id="id-other")
    assert cluster.psql("SELECT count(*) FROM pg_database WHERE datname = 'osp_lyon'") == ["1"]
    cluster.platform.destroy(spec=spec, reporter=Recorder(), tenant_id="id-lyon")
    assert cluster.psql(
        "SELECT count(*) FROM pg_database d, pg_roles r"
        " WHERE d.datname = 'osp_lyon' OR r.rolname = 'osp_lyon'"
    ) == ["0"]
