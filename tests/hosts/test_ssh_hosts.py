"""HostsPlatform over SSH: two test hosts (network namespaces with sshd, fixture
``ssh_hosts``), one OpenSlides tenant on each, reached through each host's own nginx.

The namespaces have no route to PyPI: the app role installs from a wheelhouse built
here (``app_openslides_wheelhouse``), which the hosts see on the shared filesystem.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from osp_ops.backups import CommandSource, LocalStore, new_identity, restore_backup, run_backup
from osp_ops.backups.restore import Sink
from osp_ops.domain.catalog import default_catalog
from osp_ops.domain.errors import PlatformError
from osp_ops.domain.spec import TenantSpec
from osp_ops.platforms.hosts import HostsPlatform
from osp_ops.platforms.hosts.data import HostsBackupAccess
from osp_ops.settings import Settings
from tests.factories import hosts_spec
from tests.fixtures.procs import free_port
from tests.fixtures.ssh_hosts import SshHost, SshHosts
from tests.hosts.helpers import (
    VERSION,
    Recorder,
    files_containing,
    get,
    login,
    make_secrets,
    stop_supervisord,
    timed,
    wheelhouse,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

PLACEMENT = {"nanterre": 0, "lyon": 1}  # tenant -> index of its host


@dataclass
class Fleet:
    hosts: SshHosts
    platform: HostsPlatform
    settings: Settings
    specs: dict[str, TenantSpec]
    secrets: dict[str, dict[str, str]]
    timings: dict[str, float] = field(default_factory=dict)

    def host_of(self, slug: str) -> SshHost:
        return self.hosts.hosts[PLACEMENT[slug]]


@pytest.fixture(scope="module")
def fleet(
    ssh_hosts: Callable[..., SshHosts], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Fleet]:
    hosts = ssh_hosts(count=2)
    inv = hosts.inventory_dict()
    for h in inv["all"]["children"]["test_hosts"]["hosts"].values():
        h["app_openslides_wheelhouse"] = str(wheelhouse())
    inventory = hosts.base / "inventory-osp.yaml"
    inventory.write_text(yaml.safe_dump(inv, sort_keys=False))
    data = tmp_path_factory.mktemp("ssh-data")
    # Ports are per namespace: any free port here is free inside the new namespaces.
    settings = Settings(data_dir=data, inventory=inventory, http_port=free_port(),
                        https_port=free_port())  # fmt: skip
    platform = HostsPlatform(settings=settings, catalog=default_catalog())
    f = Fleet(
        hosts=hosts,
        platform=platform,
        settings=settings,
        specs={s: hosts_spec(s, target=hosts.hosts[i].name) for s, i in PLACEMENT.items()},
        secrets={s: make_secrets(s) for s in PLACEMENT},
    )
    try:
        yield f
    finally:
        for h in hosts.hosts:
            stop_supervisord(h.root)
        if f.timings:
            print("\nssh timings:", {k: round(v, 1) for k, v in f.timings.items()})


def test_create_a_tenant_on_each_ssh_host(fleet: Fleet) -> None:
    for slug in PLACEMENT:
        spec, sec, rec = fleet.specs[slug], fleet.secrets[slug], Recorder()
        p = fleet.platform
        with timed(fleet.timings, f"create {slug}"):
            p.provision(spec=spec, secrets=sec, reporter=rec)
            p.deploy(spec=spec, version=VERSION, secrets=sec, reporter=rec)
            p.run_task(spec=spec, version=VERSION, task="migrate", secrets=sec, reporter=rec)
            p.run_task(spec=spec, version=VERSION, task="bootstrap-admin", secrets=sec,
                       reporter=rec)  # fmt: skip
        host = fleet.host_of(slug)
        assert {e.host for e in rec.events} == {host.name}
        health = p.health(spec=spec)
        assert health.ok, health
        # Files landed under the host's own root, nowhere else.
        assert (host.root / f"srv/osp-ops/{slug}/config/settings.py").exists()
        other = fleet.hosts.hosts[1 - PLACEMENT[slug]]
        assert not (other.root / f"srv/osp-ops/{slug}").exists()


@pytest.mark.parametrize("slug", list(PLACEMENT))
def test_login_through_each_hosts_nginx(fleet: Fleet, slug: str) -> None:
    host = fleet.host_of(slug)
    spec = fleet.specs[slug]
    r = get(fleet.platform, spec, "/", address=host.address, port=fleet.settings.https_port)
    assert r.status_code == 200 and r.headers["strict-transport-security"]
    login(fleet.platform, spec, fleet.secrets[slug]["admin_password"], address=host.address,
          port=fleet.settings.https_port)  # fmt: skip


_CONNECT = "import socket, sys; s = socket.socket(socket.AF_UNIX); s.settimeout(10); s.connect(sys.argv[1])"


@pytest.mark.parametrize("slug", list(PLACEMENT))
def test_each_app_runs_as_its_own_user_on_its_host(fleet: Fleet, slug: str) -> None:
    host, spec = fleet.host_of(slug), fleet.specs[slug]
    user = (
        HostsBackupAccess.for_platform(fleet.platform, fleet.settings).layout(spec).app_user(slug)
    )
    d = f"{host.root}/srv/osp-ops/{slug}"

    def on_host(*argv: str) -> subprocess.CompletedProcess[str]:
        # One remote command line: ssh hands its arguments to the host's shell.
        remote = fleet.hosts.ssh_argv(host, shlex.join(argv))
        return subprocess.run(remote, capture_output=True, text=True, timeout=60, check=False)

    modes = on_host("stat", "-c", "%U:%G:%a", f"{d}/config/settings.py", f"{d}/data/media",
                    f"{d}/run/app.sock")  # fmt: skip
    assert modes.stdout.split() == [f"root:{user}:640", f"{user}:{user}:700",
                                    f"{user}:www-data:660"], modes.stderr  # fmt: skip
    assert on_host("pgrep", "-u", user, "-f", f"{d}/run/app.sock").returncode == 0
    sock = f"{d}/run/app.sock"
    assert on_host("runuser", "-u", user, "--", "python3", "-c", _CONNECT, sock).returncode == 0
    assert on_host("runuser", "-u", "nobody", "--", "python3", "-c", _CONNECT, sock).returncode != 0
    denied = on_host("runuser", "-u", "nobody", "--", "cat", f"{d}/config/settings.py")
    assert denied.returncode != 0 and fleet.secrets[slug]["db_password"] not in denied.stdout


def test_database_roles_are_confined_inside_a_host(fleet: Fleet) -> None:
    # Both tenants on host0: add lyon's database there too, then cross-connect.
    host = fleet.hosts.hosts[0]
    twin = TenantSpec.model_validate(
        {**fleet.specs["lyon"].model_dump(mode="json"), "slug": "lyon2",
         "platform": {"kind": "hosts", "target": host.name}}
    )  # fmt: skip
    sec = make_secrets("lyon2")
    fleet.platform.provision(spec=twin, secrets=sec, reporter=Recorder())
    script = (
        "import psycopg,sys\n"
        "try:\n"
        "    psycopg.connect(sys.argv[1], connect_timeout=5); print('CONNECTED')\n"
        "except psycopg.OperationalError as e:\n"
        "    print(e)\n"
    )

    # PostgreSQL listens on the namespace's loopback: connect from inside it. The
    # password goes through the environment, not argv.
    def attempt(user: str, db: str, password: str) -> str:
        out = subprocess.run(
            ["ip", "netns", "exec", host.netns, sys.executable, "-c", script,
             f"host=127.0.0.1 port=5432 user={user} dbname={db}"],
            capture_output=True, text=True, check=True,
            env={"PATH": os.environ["PATH"], "PGPASSWORD": password},
        )  # fmt: skip
        return out.stdout

    assert "CONNECTED" in attempt("osp_lyon2", "osp_lyon2", sec["db_password"])
    assert "permission denied for database" in attempt(
        "osp_lyon2", "osp_nanterre", sec["db_password"]
    )
    assert "permission denied for database" in attempt(
        "osp_nanterre", "osp_lyon2", fleet.secrets["nanterre"]["db_password"]
    )
    fleet.platform.destroy(spec=twin, reporter=Recorder())


def test_second_converge_changes_nothing_on_any_host(fleet: Fleet) -> None:
    for slug in PLACEMENT:
        spec, sec, rec = fleet.specs[slug], fleet.secrets[slug], Recorder()
        with timed(fleet.timings, f"re-converge {slug}"):
            a = fleet.platform.provision(spec=spec, secrets=sec, reporter=rec)
            b = fleet.platform.deploy(spec=spec, version=VERSION, secrets=sec, reporter=rec)
        assert a.changed == 0 and b.changed == 0, rec.changed()
        assert b.details == {fleet.host_of(slug).name: 0}


def test_backup_and_restore_through_ssh(fleet: Fleet, tmp_path: Path) -> None:
    """pg_dump/tar on the host behind ssh, then pg_restore/tar -x there: same rows, same
    files, into a side database and directory (the live ones untouched)."""
    spec, host = fleet.specs["nanterre"], fleet.host_of("nanterre")
    access = HostsBackupAccess.for_platform(fleet.platform, fleet.settings)
    media = host.root / "srv/osp-ops/nanterre/data/media"
    assert access.files_dir(spec) == str(media)
    (media / "file").mkdir(exist_ok=True)
    payload = os.urandom(200_000)
    (media / "file" / "ordre-du-jour.pdf").write_bytes(payload)
    admin = access.database_admin(spec)
    tables = ("users_user", "agenda_item", "auth_group")
    before = admin.row_counts("osp_nanterre", tables)
    assert before["users_user"] >= 1 and before["auth_group"] >= 1
    secret, public = new_identity()
    store = LocalStore(tmp_path / "store")
    # As the engine does: pg_dump in the snapshot of a psql transaction held open on the
    # host, the row counts taken in that transaction.
    with admin.exported_snapshot("osp_nanterre") as snapshot:
        dump = access.dump_command(spec, {}, snapshot=snapshot.id)
        files = access.files_command(spec)
        assert files is not None and dump.argv[0] == "ssh"
        assert f"--snapshot={snapshot.id}" in dump.argv[-1]  # the remote command
        manifest = run_backup(
            source=CommandSource(dump.argv, dump.env),
            files=CommandSource(files.argv, files.env, kind="tar"),
            store=store, tenant="nanterre", spec_yaml="slug: nanterre\n", recipients=[public],
            app_version=VERSION, row_counts=lambda: snapshot.row_counts(tables),
        )  # fmt: skip
    assert manifest.body.row_counts == before
    side = "osp_nanterre_r1"
    admin.drop(side)
    admin.create(side, owner="osp_nanterre")
    db_sink = admin.restore_command(side, ("--no-owner", "--role=osp_nanterre"))
    files_sink = access.files_restore_command(spec, "media.restore-1")
    report = restore_backup(
        store=store, tenant="nanterre", backup_id=manifest.backup_id, identities=[secret],
        target_command=Sink(db_sink.argv, db_sink.env),
        files_command=Sink(files_sink.argv, files_sink.env),
    )  # fmt: skip
    assert report.database_restored and report.files_restored
    try:
        assert admin.row_counts(side, tables) == before
        restored = host.root / "srv/osp-ops/nanterre/data/media.restore-1/file/ordre-du-jour.pdf"
        assert restored.read_bytes() == payload
        assert access.list_files(spec, "media.restore-*") == ["media.restore-1"]
    finally:
        admin.drop(side)
        access.drop_files(spec, "media.restore-1")
    assert access.list_files(spec, "media.*") == []
    assert side not in admin.list("osp_nanterre%")


def test_suspend_resume_destroy_over_ssh(fleet: Fleet) -> None:
    spec = fleet.specs["lyon"]
    host = fleet.host_of("lyon")
    port = fleet.settings.https_port
    fleet.platform.suspend(spec=spec, reporter=Recorder())
    assert get(fleet.platform, spec, "/", address=host.address, port=port).status_code == 503
    fleet.platform.resume(spec=spec, reporter=Recorder())
    assert fleet.platform.health(spec=spec).ok
    fleet.platform.destroy(spec=spec, reporter=Recorder())
    assert not (host.root / "srv/osp-ops/lyon").exists()
    assert not (host.root / "etc/osp-ops/nginx/sites/lyon.conf").exists()
    assert not fleet.platform.health(spec=spec).ok
    assert fleet.platform.health(spec=fleet.specs["nanterre"]).ok


def test_no_secret_in_ssh_run_artifacts(fleet: Fleet) -> None:
    needles = [v for s in fleet.secrets.values() for v in s.values()]
    assert files_containing(fleet.settings.data_dir / "runs", needles) == []


def test_unreachable_host_is_a_clear_platform_error(tmp_path: Path) -> None:
    # A host whose SSH port is closed: 127.0.0.1 on a port nothing listens on.
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": {"ghost": {
        "ansible_host": "127.0.0.1", "ansible_port": free_port(), "ansible_user": "root",
        "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o ConnectTimeout=5",
        "osp_host_root": str(tmp_path / "root"),
    }}}}))  # fmt: skip
    settings = Settings(data_dir=tmp_path / "data", inventory=inventory)
    platform = HostsPlatform(settings=settings, catalog=default_catalog())
    spec = hosts_spec("ghost", target="ghost")
    with pytest.raises(
        PlatformError, match=r"^host ghost unreachable: .*(refused|Failed to connect)"
    ):
        platform.provision(spec=spec, secrets=make_secrets("ghost"), reporter=Recorder())
