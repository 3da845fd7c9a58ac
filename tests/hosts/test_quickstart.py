"""README command 1, as a new user runs it: ``scripts/quickstart`` from the repository.

Its own data directory (state, keys, backups, CA: ``OSP_OPS_DATA_DIR``, the README's
override of ``~/.local/share/osp-ops``) and an empty pip cache of its own, so nothing a
warm machine holds can hide a broken app install; its own host root and ports, so it
runs beside the other hosts tests. Then HTTPS through nginx with the local CA, the admin
login with ``osp-ops tenant credentials``, and a second run that changes nothing.
"""

from __future__ import annotations

import json
import os
import re
import ssl
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.fixtures.procs import free_port
from tests.hosts.helpers import new_host_base, stop_supervisord

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Quickstart:
    base: Path
    env: dict[str, str]
    https: int

    @property
    def data_dir(self) -> Path:
        return self.base / "data"

    def run(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["scripts/quickstart"], cwd=REPO, env=self.env, capture_output=True, text=True,
            timeout=1500, check=False, stdin=subprocess.DEVNULL,
        )  # fmt: skip

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "osp_ops.cli", *args], cwd=REPO, env=self.env,
            capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip


@pytest.fixture(scope="module")
def quickstart() -> Iterator[Quickstart]:
    base = new_host_base("osp-q-")
    (base / "pip-cache").mkdir()
    env = {
        **os.environ,
        "OSP_OPS_DATA_DIR": str(base / "data"),
        "PIP_CACHE_DIR": str(base / "pip-cache"),
        "OSP_OPS_HOST_ROOT": str(base / "root"),
        "OSP_OPS_HTTP_PORT": str(free_port()),
        "OSP_OPS_HTTPS_PORT": str(https := free_port()),
        "COLUMNS": "200",
    }
    for var in ("OSP_OPS_STATE_URL", "OSP_OPS_BACKUP_URL", "OSP_OPS_INVENTORY", "OSP_OPS_CONFIG"):
        env.pop(var, None)
    q = Quickstart(base=base, env=env, https=https)
    try:
        yield q
    finally:
        q.cli("tenant", "delete", "nanterre", "--yes")
        stop_supervisord(base / "root")
        if not os.environ.get("OSP_OPS_KEEP_SERVICE_DIRS"):
            subprocess.run(["rm", "-rf", str(base)], check=False)


def _login(q: Quickstart) -> int:
    creds = q.cli("tenant", "credentials", "nanterre", "--json")
    assert creds.returncode == 0, creds.stdout + creds.stderr
    password = json.loads(creds.stdout)["password"]
    ca = ssl.create_default_context(cafile=str(q.data_dir / "ca" / "ca.crt"))
    host = f"nanterre.localhost:{q.https}"
    with httpx.Client(verify=ca, timeout=60) as client:
        url = f"https://127.0.0.1:{q.https}"
        ext = {"sni_hostname": "nanterre.localhost"}
        home = client.get(url + "/", headers={"Host": host}, extensions=ext)
        assert home.status_code == 200, home.text[:300]
        r = client.post(
            url + "/apps/users/login/",
            json={"username": "admin", "password": password},
            headers={"Host": host, "Referer": f"https://{host}/"},
            extensions=ext,
        )
        assert r.status_code == 200, r.text[:300]
        return home.status_code


def test_quickstart_from_nothing_gives_a_reachable_instance(quickstart: Quickstart) -> None:
    proc = quickstart.run()
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    assert "HTTP 200" in out and "nanterre is up" in out, out[-3000:]
    # The app virtualenv got the pinned pip, setuptools and wheel, then the locked set.
    venv = quickstart.base / "root" / "srv" / "osp-ops" / "venvs" / "openslides-3.3"
    freeze = subprocess.run(
        [str(venv / "bin/python"), "-m", "pip", "list", "--format=json"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    installed = {p["name"].lower(): p["version"] for p in json.loads(freeze.stdout)}
    assert installed["openslides"] == "3.3" and installed["bleach"] == "3.3.1", installed
    assert _login(quickstart) == 200


def test_quickstart_again_converges_and_changes_nothing(quickstart: Quickstart) -> None:
    proc = quickstart.run()
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    assert "HTTP 200" in out, out[-3000:]
    ops = json.loads(quickstart.cli("op", "list", "--tenant", "nanterre", "--json").stdout)
    last = max(ops, key=lambda o: o["created_at"])
    assert last["status"] == "succeeded", last
    counts = [int(n) for n in re.findall(r"changed=(\d+)", json.dumps(last["steps"]))]
    assert counts and sum(counts) == 0, last["steps"]
    assert _login(quickstart) == 200
