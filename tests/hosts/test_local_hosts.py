"""HostsPlatform end to end on localhost (connection local): real ansible-runner,
PostgreSQL, nginx and OpenSlides 3.3 for two tenants under a temporary host root.

The tests of this module run in order and share one host (module fixture ``host``).
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
import pytest

from osp_ops.domain.catalog import default_catalog
from osp_ops.domain.errors import PlatformError
from osp_ops.domain.spec import TenantSpec
from osp_ops.platforms import tls
from osp_ops.platforms.hosts import HostsPlatform
from osp_ops.settings import Settings
from tests.fixtures.procs import free_port
from tests.hosts.helpers import (
    VERSION,
    ArgvWatch,
    Recorder,
    files_containing,
    get,
    login,
    make_secrets,
    new_host_base,
    repo_spec,
    stop_supervisord,
    timed,
    unix_user_prefix,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

SLUGS = ("nanterre", "lyon")


@dataclass
class Host:
    root: Path
    settings: Settings
    platform: HostsPlatform
    pg_port: int
    specs: dict[str, TenantSpec]
    secrets: dict[str, dict[str, str]]
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def https(self) -> int:
        return self.settings.https_port


@pytest.fixture(scope="module")
def host() -> Iterator[Host]:
    base = new_host_base("osp-h-")
    root = base / "root"
    pg_port = free_port()
    settings = Settings(
        data_dir=base / "data",
        host_root=str(root),
        http_port=free_port(),
        https_port=free_port(),
    )
    platform = HostsPlatform(
        settings=settings,
        catalog=default_catalog(),
        local_vars={"osp_postgresql_port": pg_port, "osp_unix_user_prefix": unix_user_prefix(root)},
    )
    h = Host(
        root=root,
        settings=settings,
        platform=platform,
        pg_port=pg_port,
        specs={s: repo_spec(s) for s in SLUGS},
        secrets={s: make_secrets(s) for s in SLUGS},
    )
    try:
        yield h
    finally:
        stop_supervisord(root)
        if not os.environ.get("OSP_OPS_KEEP_SERVICE_DIRS"):
            subprocess.run(["rm", "-rf", str(base)], check=False)
        if h.timings:
            print("\nhosts timings:", {k: round(v, 1) for k, v in h.timings.items()})


def _create(h: Host, slug: str) -> None:
    spec, sec, rec = h.specs[slug], h.secrets[slug], Recorder()
    p = h.platform
    with timed(h.timings, f"create {slug}"):
        p.provision(spec=spec, secrets=sec, reporter=rec)
        p.deploy(spec=spec, version=VERSION, secrets=sec, reporter=rec)
        p.run_task(spec=spec, version=VERSION, task="migrate", secrets=sec, reporter=rec)
        boot = p.run_task(
            spec=spec, version=VERSION, task="bootstrap-admin", secrets=sec, reporter=rec
        )
    assert "admin" in boot.output
    assert any(e.message.startswith("Install OpenSlides") for e in rec.events)


def test_create_two_tenants(host: Host) -> None:
    everything = [v for s in host.secrets.values() for k, v in s.items() if k != "secret_key"]
    with ArgvWatch(everything) as watch:
        for slug in SLUGS:
            _create(host, slug)
    assert watch.scans > 10
    assert watch.hits == [], "a secret appeared in a process's argv"
    for slug in SLUGS:
        health = host.platform.health(spec=host.specs[slug])
        assert health.ok, health
        assert health.version == VERSION
        assert health.url == f"https://{slug}.localhost:{host.https}/"


@pytest.mark.parametrize("slug", SLUGS)
def test_each_tenant_serves_its_own_openslides(host: Host, slug: str) -> None:
    spec = host.specs[slug]
    r = get(host.platform, spec, "/", port=host.https)
    assert r.status_code == 200
    assert "<app-root" in r.text or "OpenSlides" in r.text
    assert r.headers["strict-transport-security"].startswith("max-age=")
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "SAMEORIGIN"
    assert r.headers["referrer-policy"]
    assert "default-src 'self'" in r.headers["content-security-policy"]
    # The certificate is the tenant's own, issued by the osp-ops CA.
    assert tls.ca_cert_path(host.settings).exists()


@pytest.mark.parametrize("slug", SLUGS)
def test_admin_login_with_generated_password(host: Host, slug: str) -> None:
    who = login(
        host.platform,
        host.specs[slug],
        host.secrets[slug]["admin_password"],
        address="127.0.0.1",
        port=host.https,
    )
    user = who["user"]  # whoami leaves out the email (a restricted field)
    assert f"{user['first_name']} {user['last_name']}".strip() == host.specs[slug].admin.name
    pw = host.secrets[slug]["db_password"]
    dsn = f"host=127.0.0.1 port={host.pg_port} user=osp_{slug} dbname=osp_{slug} password={pw}"
    with psycopg.connect(dsn, connect_timeout=5) as conn:
        row = conn.execute("SELECT email FROM users_user WHERE username = 'admin'").fetchone()
    assert row == (host.specs[slug].admin.email,)


def test_http_redirects_and_unknown_hosts_are_refused(host: Host) -> None:
    spec = host.specs["nanterre"]
    r = httpx.get(
        f"http://127.0.0.1:{host.settings.http_port}/motions",
        headers={"Host": "nanterre.localhost"},
    )
    assert r.status_code == 301
    assert r.headers["location"] == f"https://nanterre.localhost:{host.https}/motions"
    with pytest.raises(httpx.RemoteProtocolError):  # 444: closed without an answer
        httpx.get(f"http://127.0.0.1:{host.settings.http_port}/", headers={"Host": "evil.example"})
    with pytest.raises(httpx.ConnectError) as e:  # no certificate for unknown names
        get(host.platform, spec, "/", port=host.https, hostname="evil.localhost")
    assert isinstance(e.value.__context__, ssl.SSLError) or "SSL" in str(e.value)


def test_each_tenant_role_is_confined_to_its_database(host: Host) -> None:
    def dsn(role: str, db: str) -> str:
        pw = host.secrets[role]["db_password"]
        return f"host=127.0.0.1 port={host.pg_port} user=osp_{role} dbname=osp_{db} password={pw}"

    for own, other in (("nanterre", "lyon"), ("lyon", "nanterre")):
        with psycopg.connect(dsn(own, own), connect_timeout=5) as conn:
            n = conn.execute("SELECT count(*) FROM users_user").fetchone()
            assert n is not None and n[0] >= 1
        with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
            psycopg.connect(dsn(own, other), connect_timeout=5)


def test_second_deploy_changes_nothing(host: Host) -> None:
    for slug in SLUGS:
        rec = Recorder()
        spec, sec = host.specs[slug], host.secrets[slug]
        with timed(host.timings, f"re-provision+deploy {slug}"):
            provisioned = host.platform.provision(spec=spec, secrets=sec, reporter=rec)
            deployed = host.platform.deploy(spec=spec, version=VERSION, secrets=sec, reporter=rec)
        assert provisioned.changed == 0, rec.changed()
        assert deployed.changed == 0, rec.changed()
        assert deployed.details == {"localhost": 0}
        migrated = host.platform.run_task(
            spec=spec, version=VERSION, task="migrate", secrets=sec, reporter=rec
        )
        assert "No migrations to apply" in migrated.output


def test_suspend_shows_maintenance_page_and_resume_restores(host: Host) -> None:
    spec, rec = host.specs["nanterre"], Recorder()
    host.platform.suspend(spec=spec, reporter=rec)
    r = get(host.platform, spec, "/", port=host.https)
    assert r.status_code == 503
    assert "maintenance" in r.text.lower() and "Ville de Nanterre" in r.text
    assert r.headers["strict-transport-security"]
    health = host.platform.health(spec=spec)
    assert not health.ok and "maintenance" in health.checks["app"]
    assert host.platform.health(spec=host.specs["lyon"]).ok  # the other tenant is untouched
    again = host.platform.suspend(spec=spec, reporter=rec)
    assert again.changed == 0
    host.platform.resume(spec=spec, reporter=rec)
    assert host.platform.health(spec=spec).ok
    assert get(host.platform, spec, "/", port=host.https).status_code == 200


def test_no_secret_in_kept_run_artifacts(host: Host) -> None:
    runs = host.settings.data_dir / "runs"
    kept = list(runs.iterdir())
    assert kept, "no run directory was kept"
    assert not list(runs.glob("*/env/extravars")), "the secrets file was not deleted"
    needles = [v for s in host.secrets.values() for v in s.values()]
    assert files_containing(runs, needles) == []
    for command in runs.glob("*/artifacts/*/command"):
        assert "env" not in json.loads(command.read_text()), "the runner's environment was kept"


def test_unknown_task_and_kubernetes_spec_are_refused(host: Host) -> None:
    spec = host.specs["lyon"]
    with pytest.raises(PlatformError, match="unknown task"):
        host.platform.run_task(spec=spec, version=VERSION, task="drop-db", secrets={},
                               reporter=Recorder())  # fmt: skip
    k8s = TenantSpec.model_validate(
        {**spec.model_dump(mode="json"), "platform": {"kind": "kubernetes"}}
    )
    with pytest.raises(PlatformError, match="not on hosts"):
        host.platform.suspend(spec=k8s, reporter=Recorder())


def test_destroy_removes_vhost_process_files_and_database(host: Host) -> None:
    spec = host.specs["lyon"]
    host.platform.destroy(spec=spec, reporter=Recorder())
    root = host.root
    assert not (root / "etc/osp-ops/nginx/sites/lyon.conf").exists()
    assert not (root / "etc/osp-ops/supervisor.d/osp-ops-app-lyon.conf").exists()
    assert not (root / "srv/osp-ops/lyon").exists()
    status = subprocess.run(
        ["supervisorctl", "-c", str(root / "etc/osp-ops/supervisord.conf"), "status"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert "osp-ops-app-lyon" not in status.stdout
    assert "osp-ops-app-nanterre" in status.stdout
    dbs = subprocess.run(
        ["runuser", "-u", "postgres", "--", "psql", "-h", str(root / "run/osp-ops/postgresql"),
         "-p", str(host.pg_port), "-d", "postgres", "-Atc",
         "SELECT datname FROM pg_database UNION ALL SELECT rolname FROM pg_roles"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert "osp_lyon" not in dbs and "osp_nanterre" in dbs
    with pytest.raises(httpx.ConnectError):  # lyon's name is now unknown: handshake refused
        get(host.platform, spec, "/", port=host.https)
    assert host.platform.health(spec=host.specs["nanterre"]).ok
    again = host.platform.destroy(spec=spec, reporter=Recorder())
    assert again.changed == 0
