"""A Unix user per hosts tenant: two OpenSlides tenants A and B on localhost (connection
local, one temporary host root, created once for the module), each app running as its
own system user. A's user cannot read B's settings or media nor connect to B's app
socket; ``nobody`` connects to neither socket; nginx still serves both over HTTPS; a
restore leaves the files to the tenant's user; delete removes the user.

The probes are printed as a table (``-s`` shows it).
"""

from __future__ import annotations

import grp
import io
import os
import pwd
import stat
import subprocess
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from osp_ops.domain.catalog import default_catalog
from osp_ops.domain.names import tenant_names
from osp_ops.domain.spec import TenantSpec
from osp_ops.platforms.hosts import HostsPlatform
from osp_ops.platforms.hosts.data import HostsBackupAccess
from osp_ops.settings import Settings
from tests.factories import hosts_spec
from tests.fixtures.procs import free_port
from tests.hosts.helpers import (
    VERSION,
    Recorder,
    get,
    make_secrets,
    new_host_base,
    stop_supervisord,
    unix_user_prefix,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1500)]

A, B = "arles", "brest"
WEB_USER = "www-data"
# A request to an app socket: exits 0 on an HTTP answer, 13 when the connect is refused.
_CONNECT = (
    "import socket, sys\n"
    "s = socket.socket(socket.AF_UNIX)\n"
    "s.settimeout(10)\n"
    "try:\n"
    "    s.connect(sys.argv[1])\n"
    "except PermissionError:\n"
    "    sys.exit(13)\n"
    "s.sendall(b'GET /apps/core/version/ HTTP/1.0\\r\\nHost: ' + sys.argv[2].encode() + b'\\r\\n\\r\\n')\n"
    "sys.exit(0 if s.recv(16).startswith(b'HTTP/') else 1)\n"
)  # fmt: skip


@dataclass
class Site:
    root: Path
    settings: Settings
    platform: HostsPlatform
    prefix: str
    specs: dict[str, TenantSpec]
    secrets: dict[str, dict[str, str]]
    probes: list[tuple[str, str, str]] = field(default_factory=list)

    def user(self, slug: str) -> str:
        return self.prefix + tenant_names(slug).unix_user

    def dir(self, slug: str) -> Path:
        return self.root / "srv" / "osp-ops" / slug

    def socket(self, slug: str) -> Path:
        return self.dir(slug) / "run" / "app.sock"

    def as_user(self, user: str, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["runuser", "-u", user, "--", *argv], capture_output=True, text=True, timeout=60,
            check=False,
        )  # fmt: skip

    def connect(self, user: str, slug: str) -> int:
        """Exit code of a request to ``slug``'s app socket as ``user``."""
        proc = self.as_user(
            user, "/usr/bin/python3", "-c", _CONNECT, str(self.socket(slug)), f"{slug}.localhost"
        )
        return proc.returncode

    def probe(self, who: str, what: str, allowed: bool, expect: bool) -> None:
        self.probes.append((who, what, "allowed" if allowed else "denied"))
        assert allowed == expect, f"{who}: {what} was {'allowed' if allowed else 'denied'}"


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    base = new_host_base("osp-u-")
    root = base / "root"
    settings = Settings(
        data_dir=base / "data", host_root=str(root), http_port=free_port(), https_port=free_port()
    )
    prefix = unix_user_prefix(root)
    platform = HostsPlatform(
        settings=settings,
        catalog=default_catalog(),
        local_vars={"osp_postgresql_port": free_port(), "osp_unix_user_prefix": prefix},
    )
    s = Site(root, settings, platform, prefix, {t: hosts_spec(t) for t in (A, B)},
             {t: make_secrets(t) for t in (A, B)})  # fmt: skip
    try:
        for slug in (A, B):
            spec, sec, rec = s.specs[slug], s.secrets[slug], Recorder()
            platform.provision(spec=spec, secrets=sec, reporter=rec, tenant_id=f"id-{slug}")
            platform.deploy(spec=spec, version=VERSION, secrets=sec, reporter=rec)
            platform.run_task(
                spec=spec, version=VERSION, task="bootstrap-admin", secrets=sec, reporter=rec
            )
        yield s
    finally:
        if s.probes:
            width = max(len(w) for w, _, _ in s.probes)
            print("\nUnix user probes:")
            for who, what, outcome in s.probes:
                print(f"  {who:<{width}}  {outcome:<8} {what}")
        stop_supervisord(root)
        if not os.environ.get("OSP_OPS_KEEP_SERVICE_DIRS"):
            subprocess.run(["rm", "-rf", str(base)], check=False)


def _owner(path: Path) -> tuple[str, str, int]:
    st = path.lstat()
    return (
        pwd.getpwuid(st.st_uid).pw_name,
        grp.getgrgid(st.st_gid).gr_name,
        stat.S_IMODE(st.st_mode),
    )


def test_each_app_runs_as_its_own_user(site: Site) -> None:
    for slug in (A, B):
        user = pwd.getpwnam(site.user(slug))
        assert user.pw_dir == str(site.dir(slug) / "data")
        assert user.pw_shell == "/usr/sbin/nologin"
        assert user.pw_uid < 1000, "not a system user"
        assert site.user(slug) not in grp.getgrnam(WEB_USER).gr_mem
        conf = site.root / "etc/osp-ops/supervisor.d" / f"{tenant_names(slug).service}.conf"
        assert f"user={site.user(slug)}\n" in conf.read_text()
        daphne = subprocess.run(
            ["pgrep", "-u", site.user(slug), "-f", str(site.socket(slug))],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert daphne.stdout.split(), f"no daphne of {slug} runs as {site.user(slug)}"


def test_settings_media_and_socket_belong_to_the_tenant(site: Site) -> None:
    for slug in (A, B):
        user, d = site.user(slug), site.dir(slug)
        assert _owner(d / "config/settings.py") == ("root", user, 0o640)
        assert _owner(d / "config") == ("root", user, 0o750)
        assert _owner(d / "data") == (user, user, 0o700)
        assert _owner(d / "data/media") == (user, user, 0o700)
        assert _owner(d / "run")[:2] == (user, WEB_USER)
        assert _owner(site.socket(slug)) == (user, WEB_USER, 0o660)
        # The shared virtualenv is root's: the tenant cannot change the code it runs.
        venv = site.root / "srv/osp-ops/venvs" / f"openslides-{VERSION}"
        for path in (venv, venv / "bin", venv / "lib/python3.11/site-packages"):
            assert path.stat().st_uid == 0
            writable = site.as_user(user, "test", "-w", str(path)).returncode == 0
            site.probe(user, f"writes the shared {path.relative_to(venv.parent)}", writable, False)


def test_a_tenant_cannot_read_the_other_ones_files(site: Site) -> None:
    for me, other in ((A, B), (B, A)):
        user, theirs = site.user(me), site.dir(other)
        password = site.secrets[other]["db_password"]
        read = site.as_user(user, "cat", str(theirs / "config/settings.py"))
        assert password not in read.stdout
        site.probe(user, f"reads {other}'s settings.py", read.returncode == 0, False)
        listed = site.as_user(user, "ls", str(theirs / "data/media"))
        site.probe(user, f"lists {other}'s media", listed.returncode == 0, False)
        wrote = site.as_user(user, "touch", str(theirs / "data/media/x"))
        site.probe(user, f"writes {other}'s media", wrote.returncode == 0, False)
        own = site.as_user(user, "cat", str(site.dir(me) / "config/settings.py"))
        assert site.secrets[me]["db_password"] in own.stdout
        site.probe(user, "reads its own settings.py", own.returncode == 0, True)
    for slug in (A, B):
        read = site.as_user(WEB_USER, "cat", str(site.dir(slug) / "config/settings.py"))
        site.probe(WEB_USER, f"reads {slug}'s settings.py", read.returncode == 0, False)


def test_only_the_tenant_and_nginx_reach_an_app_socket(site: Site) -> None:
    for me, other in ((A, B), (B, A)):
        site.probe(site.user(me), f"connects to {other}'s socket",
                   site.connect(site.user(me), other) == 0, False)  # fmt: skip
        site.probe(site.user(me), "connects to its own socket",
                   site.connect(site.user(me), me) == 0, True)  # fmt: skip
    for slug in (A, B):
        site.probe("nobody", f"connects to {slug}'s socket", site.connect("nobody", slug) == 0,
                   False)  # fmt: skip
        r = get(site.platform, site.specs[slug], "/apps/core/version/",
                port=site.settings.https_port)  # fmt: skip
        site.probe("nginx", f"serves {slug} over HTTPS", r.status_code == 200, True)


def test_a_second_converge_changes_nothing(site: Site) -> None:
    result = site.platform.deploy(
        spec=site.specs[A], version=VERSION, secrets=site.secrets[A], reporter=Recorder()
    )
    assert result.changed == 0


def test_restored_files_belong_to_the_tenant(site: Site) -> None:
    spec, user = site.specs[A], site.user(A)
    access = HostsBackupAccess.for_platform(site.platform, site.settings)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("file/compte-rendu.pdf")
        data = b"%PDF-1.4 compte rendu"
        info.size, info.uid, info.gid, info.mode = len(data), 0, 0, 0o644
        tar.addfile(info, io.BytesIO(data))
    cmd = access.files_restore_command(spec, "media.restore-1")
    subprocess.run(list(cmd.argv), input=buf.getvalue(), check=True, capture_output=True)
    access.switch_files(spec, new="media.restore-1", retired="media.old-1")
    media = site.dir(A) / "data/media"
    assert _owner(media)[:2] == (user, user)
    assert _owner(media / "file/compte-rendu.pdf")[:2] == (user, user)
    assert _owner(media / "file")[:2] == (user, user)
    r = get(site.platform, spec, "/apps/core/version/", port=site.settings.https_port)
    assert r.status_code == 200


def test_delete_removes_the_tenant_user(site: Site) -> None:
    site.platform.destroy(spec=site.specs[B], reporter=Recorder(), tenant_id=f"id-{B}")
    with pytest.raises(KeyError):
        pwd.getpwnam(site.user(B))
    with pytest.raises(KeyError):
        grp.getgrnam(site.user(B))
    assert pwd.getpwnam(site.user(A))
