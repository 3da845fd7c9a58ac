"""Helpers of the hosts platform tests: specs, secrets, HTTPS through nginx, cleanup."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from osp_ops.domain.catalog import bootstrap_lock_text, lock_text
from osp_ops.domain.spec import TenantSpec, parse_spec
from osp_ops.platforms.base import Event
from osp_ops.platforms.hosts import HostsPlatform
from tests.factories import hosts_spec
from tests.fixtures.procs import free_port

VERSION = "3.3"
REPO = Path(__file__).resolve().parents[2]


def repo_spec(slug: str) -> TenantSpec:
    """The spec in tenants/<slug>.yaml when the repository has one, else hosts_spec(slug)."""
    path = Path(__file__).resolve().parents[2] / "tenants" / f"{slug}.yaml"
    if path.exists():
        return parse_spec(path.read_text("utf-8"), source=str(path), expected_slug=slug)
    return hosts_spec(slug)


def make_secrets(slug: str) -> dict[str, str]:
    """Recognisable canary secrets, unique per tenant and test run."""
    tag = os.urandom(6).hex()
    return {
        "db_password": f"canary-db-{slug}-{tag}",
        "admin_password": f"canary-admin-{slug}-{tag}",
        "secret_key": f"canary-sk-{slug}-{tag}-{os.urandom(12).hex()}",
    }


@dataclass
class Recorder:
    """A reporter that keeps every event."""

    events: list[Event] = field(default_factory=list)

    def __call__(self, event: Event) -> None:
        self.events.append(event)

    def changed(self) -> list[Event]:
        return [e for e in self.events if e.status == "changed"]


def wheelhouse() -> Path:
    """The files of OpenSlides 3.3's pinned sets, fetched by ``scripts/app-wheelhouse``.

    SSH test hosts have no route to PyPI: they install from this directory (the
    product's offline path, ``app_openslides_wheelhouse``), which they see because the
    namespaces share this machine's filesystem. The directory holds the locked files
    themselves (sdists stay sdists, built on the host), one per lock content.
    """
    locks = bootstrap_lock_text() + lock_text("openslides", VERSION)
    tag = hashlib.sha256(locks.encode()).hexdigest()[:12]
    out = Path(tempfile.gettempdir()) / "osp-ops-wheelhouse" / f"openslides-{VERSION}-{tag}"
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{out}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one fetch when test workers ask at once
        if not (out / ".complete").exists():
            subprocess.run(
                [sys.executable, str(REPO / "scripts" / "app-wheelhouse"), "openslides",
                 VERSION, str(out)],
                check=True,
            )  # fmt: skip
    return out


def get(
    platform: HostsPlatform,
    spec: TenantSpec,
    path: str,
    *,
    client: httpx.Client | None = None,
    address: str = "127.0.0.1",
    port: int,
    method: str = "GET",
    hostname: str | None = None,
    **kwargs: Any,
) -> httpx.Response:
    """A request to nginx at address:port for the tenant's host name (SNI + Host)."""
    name = hostname or spec.hosts.primary
    own = client is None
    c = client or platform.http_client(spec)
    try:
        headers = {"Host": f"{name}:{port}", **kwargs.pop("headers", {})}
        return c.request(
            method,
            f"https://{address}:{port}{path}",
            headers=headers,
            extensions={"sni_hostname": name},
            **kwargs,
        )
    finally:
        if own:
            c.close()


def login(
    platform: HostsPlatform, spec: TenantSpec, password: str, *, address: str, port: int
) -> dict[str, Any]:
    """Log in as admin like the OpenSlides client does; return whoami after a CSRF POST."""
    with platform.http_client(spec) as c:
        origin = f"https://{spec.hosts.primary}:{port}"
        r = get(platform, spec, "/apps/users/login/", client=c, address=address, port=port)
        assert r.status_code == 200, r.text[:300]
        bad = get(platform, spec, "/apps/users/login/", client=c, address=address, port=port,
                  method="POST", json={"username": "admin", "password": "admin"})  # fmt: skip
        assert bad.status_code == 400, "the default admin/admin password still works"
        r = get(platform, spec, "/apps/users/login/", client=c, address=address, port=port,
                method="POST", json={"username": "admin", "password": password})  # fmt: skip
        assert r.status_code == 200, r.text[:300]
        assert "OpenSlidesSessionID" in c.cookies, c.cookies  # OpenSlides renames the cookies
        who = get(platform, spec, "/apps/users/whoami/", client=c, address=address, port=port)
        data = who.json()
        assert data["user"]["username"] == "admin", data
        # An authenticated POST without the CSRF token is refused; with it, it passes.
        denied = get(platform, spec, "/apps/users/logout/", client=c, address=address,
                     port=port, method="POST", headers={"Referer": origin + "/"})  # fmt: skip
        assert denied.status_code == 403, denied.text[:300]
        token = c.cookies.get("OpenSlidesCsrfToken")
        assert token, "no CSRF cookie"
        out = get(platform, spec, "/apps/users/logout/", client=c, address=address, port=port,
                  method="POST", headers={"X-CSRFToken": token, "Referer": origin + "/"})  # fmt: skip
        assert out.status_code == 200, out.text[:300]
        return dict(data)


class ArgvWatch:
    """Scans /proc/*/cmdline in a thread; ``hits`` lists argv lines holding a secret."""

    def __init__(self, secrets: list[str]) -> None:
        self.secrets = [s.encode() for s in secrets]
        self.hits: list[str] = []
        self.scans = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            for d in Path("/proc").iterdir():
                if not d.name.isdigit():
                    continue
                try:
                    argv = (d / "cmdline").read_bytes()
                except OSError:
                    continue
                if any(s in argv for s in self.secrets):
                    self.hits.append(argv.replace(b"\0", b" ").decode(errors="replace"))
            self.scans += 1
            time.sleep(0.02)

    def __enter__(self) -> ArgvWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def files_containing(root: Path, needles: list[str]) -> list[str]:
    """Files under root holding any of the needles."""
    raw = [n.encode() for n in needles]
    found = []
    for p in root.rglob("*"):
        if p.is_file() and not p.is_symlink():
            data = p.read_bytes()
            found += [f"{p}: {n.decode()}" for n in raw if n in data]
    return found


def new_host_base(prefix: str) -> Path:
    """A fresh ``/tmp/<prefix>…`` directory with an empty ``root`` (the host root) in it.

    Short paths: Unix sockets (PostgreSQL, the apps) must stay under 108 bytes.
    """
    base = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    base.chmod(0o755)
    (base / "root").mkdir(mode=0o755)
    return base


def unix_user_prefix(host_root: Path | str) -> str:
    """``osp_unix_user_prefix`` of a test host root: test hosts share this machine's
    /etc/passwd, so the tenants of one slug on two of them get two users."""
    return "t" + hashlib.sha256(str(host_root).encode()).hexdigest()[:5] + "-"


def local_inventory(base: Path, *, http: int, https: int, pg_port: int) -> Path:
    """``<base>/inventory.yml``: localhost (connection local) with the host root
    ``<base>/root`` and these ports, for the CLI (``OSP_OPS_INVENTORY``)."""
    localhost = {
        "ansible_connection": "local",
        "ansible_python_interpreter": "/usr/bin/python3",
        "osp_host_root": str(base / "root"),
        "osp_unix_user_prefix": unix_user_prefix(base / "root"),
        "osp_http_port": http,
        "osp_https_port": https,
        "osp_postgresql_port": pg_port,
    }
    path = base / "inventory.yml"
    path.write_text(yaml.safe_dump({"all": {"hosts": {"localhost": localhost}}}))
    return path


@dataclass(frozen=True)
class LocalSite:
    """A test host on this machine for the real CLI: its directory, the CLI's environment
    (state, tenants, inventory, host root and ports of its own), its ports."""

    base: Path
    env: dict[str, str]
    https: int
    pg_port: int


@contextlib.contextmanager
def local_site(prefix: str, specs: dict[str, dict[str, Any]] | None = None) -> Iterator[LocalSite]:
    """A fresh ``/tmp/<prefix>…`` host with these tenant specs in its ``tenants``
    directory; on exit its supervisord is stopped and (unless
    ``OSP_OPS_KEEP_SERVICE_DIRS``) the directory removed."""
    base = new_host_base(prefix)
    (base / "tenants").mkdir()
    http, https, pg_port = free_port(), free_port(), free_port()
    inventory = local_inventory(base, http=http, https=https, pg_port=pg_port)
    for slug, spec in (specs or {}).items():
        (base / "tenants" / f"{slug}.yaml").write_text(yaml.safe_dump(spec, allow_unicode=True))
    env = {
        **os.environ,
        "OSP_OPS_DATA_DIR": str(base / "data"),
        "OSP_OPS_TENANTS_DIR": str(base / "tenants"),
        "OSP_OPS_INVENTORY": str(inventory),
        "OSP_OPS_HOST_ROOT": str(base / "root"),
        "OSP_OPS_HTTP_PORT": str(http),
        "OSP_OPS_HTTPS_PORT": str(https),
        "COLUMNS": "250",
    }
    try:
        yield LocalSite(base=base, env=env, https=https, pg_port=pg_port)
    finally:
        stop_supervisord(base / "root")
        if not os.environ.get("OSP_OPS_KEEP_SERVICE_DIRS"):
            subprocess.run(["rm", "-rf", str(base)], check=False)


def stop_supervisord(host_root: Path) -> None:
    """Stop the supervisord instance under a host root (and so every program) by PID,
    then remove the tenants' Unix users a test left there (their homes are under it)."""
    pidfile = host_root / "run" / "osp-ops" / "supervisord.pid"
    with contextlib.suppress(OSError, ValueError):
        pid = int(pidfile.read_text().strip())
        os.kill(pid, signal.SIGTERM)
        for _ in range(300):
            os.kill(pid, 0)
            time.sleep(0.1)
    for user in users_under(host_root):
        subprocess.run(["userdel", user], capture_output=True, check=False)


def users_under(host_root: Path) -> list[str]:
    """Unix users whose home is under ``host_root`` (the tenants of that test host)."""
    inside = f"{str(host_root).rstrip('/')}/"
    lines = Path("/etc/passwd").read_text().splitlines()
    return [
        f[0] for f in (line.split(":") for line in lines) if len(f) > 5 and f[5].startswith(inside)
    ]


@contextlib.contextmanager
def timed(record: dict[str, float], name: str) -> Iterator[None]:
    t0 = time.monotonic()
    yield
    record[name] = time.monotonic() - t0
