"""A third app, added without touching osp_ops/ or playbooks/: TinyApp (tests/apps/tinyapp).

The fixture installs the TinyApp package with pip into a directory of its own and puts
it on the CLI's PYTHONPATH: osp-ops' own loader finds its profile through the
``osp_ops.apps`` entry point, and the hosts platform its role (shipped in the package).
A TinyApp tenant is then created, backed up, restored and deleted on this machine
(connection local) through the real CLI.
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from osp_ops.domain.names import tenant_names
from tests.hosts.helpers import local_site, unix_user_prefix

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1200)]

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "tests" / "apps" / "tinyapp"
SLUG = "bourg"


@dataclass
class Site:
    base: Path
    env: dict[str, str]
    https: int
    pg_port: int

    @property
    def root(self) -> Path:
        return self.base / "root"

    def cli(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [sys.executable, "-m", "osp_ops.cli", *args],
            env=self.env, capture_output=True, text=True, timeout=900, check=False,
        )  # fmt: skip
        if ok:
            assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        return proc

    def json(self, *args: str) -> Any:
        return json.loads(self.cli(*args, "--json").stdout)

    def tenant_dir(self) -> Path:
        return self.root / "srv" / "osp-ops" / SLUG

    def files(self) -> dict[str, bytes]:
        top = self.tenant_dir() / "data" / "files"
        return {str(p.relative_to(top)): p.read_bytes() for p in top.rglob("*") if p.is_file()}

    def psql(self, sql: str, database: str = "postgres") -> list[str]:
        out = subprocess.run(
            ["runuser", "-u", "postgres", "--", "psql", "-h",
             str(self.root / "run" / "osp-ops" / "postgresql"), "-p", str(self.pg_port),
             "-XAtc", sql, database],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        return out.stdout.splitlines()

    def health(self) -> dict[str, Any]:
        ca = ssl.create_default_context(cafile=str(self.base / "data" / "ca" / "ca.crt"))
        host = f"{SLUG}.localhost"
        with httpx.Client(verify=ca, timeout=30) as c:
            r = c.get(
                f"https://127.0.0.1:{self.https}/health",
                headers={"Host": f"{host}:{self.https}"},
                extensions={"sni_hostname": host},
            )
        assert r.status_code == 200, r.text[:300]
        body: dict[str, Any] = r.json()
        return body


def _install(base: Path) -> Path:
    """pip install of the TinyApp package into ``<base>/site`` (from a copy of its source,
    so the build leaves nothing in the repository)."""
    source = base / "tinyapp-src"
    shutil.copytree(PACKAGE, source)
    target = base / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
         "--no-build-isolation", "--target", str(target), str(source)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return target


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    with local_site("osp-t-") as s:
        path = [str(_install(s.base)), os.environ.get("PYTHONPATH", "")]
        s.env["PYTHONPATH"] = os.pathsep.join(p for p in path if p)
        yield Site(base=s.base, env=s.env, https=s.https, pg_port=s.pg_port)


def test_osp_ops_and_its_playbooks_never_name_the_third_app() -> None:
    named = subprocess.run(
        ["grep", "-rli", "tinyapp", str(REPO / "osp_ops"), str(REPO / "playbooks")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert named.stdout == "", named.stdout


def test_the_loader_finds_the_installed_profile(site: Site) -> None:
    code = (
        "from osp_ops.apps.loader import load_apps; r = load_apps(); "
        "p = r.profile('tinyapp'); "
        "print(sorted(r.catalog.apps), p.hosts_files.path, p.roles_dir.is_dir())"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], env=site.env, capture_output=True, text=True, check=True
    )
    assert proc.stdout.split() == [
        "['decidim',",
        "'openslides',",
        "'tinyapp']",
        "data/files",
        "True",
    ]


def test_create_a_tinyapp_tenant(site: Site) -> None:
    site.cli("tenant", "create", SLUG, "--app", "tinyapp", "--host", f"{SLUG}.localhost")
    assert site.json("tenant", "show", SLUG)["phase"] == "ready"
    assert site.health() == {"app": "tinyapp", "version": "1.0", "files": 0}
    assert site.psql("SELECT count(*) FROM tinyapp_admins", f"osp_{SLUG}") == ["1"]


def test_backup_holds_its_rows_and_files(site: Site) -> None:
    user = unix_user_prefix(site.root) + tenant_names(SLUG).unix_user
    site.psql("INSERT INTO tinyapp_notes (body) VALUES ('ordre du jour'), ('compte rendu')",
              f"osp_{SLUG}")  # fmt: skip
    files = site.tenant_dir() / "data" / "files"
    (files / "2027").mkdir()
    (files / "2027" / "plan.pdf").write_bytes(b"%PDF plan du bourg")
    subprocess.run(["chown", "-R", f"{user}:{user}", str(files)], check=True)
    assert site.health()["files"] == 1

    site.cli("backup", "run", SLUG)
    listing = site.json("backup", "list", SLUG)["backups"]
    assert [b["state"] for b in listing] == ["complete"] and listing[0]["verified_at"]
    manifest = json.loads(next((site.base / "data" / "backups").rglob("manifest.json")).read_text())
    body = manifest.get("body", manifest)
    assert {"db", "files", "spec"} <= {o["name"].split(".")[0] for o in body["objects"]}
    assert body["row_counts"]["tinyapp_notes"] == 2


def test_restore_brings_back_its_rows_and_files(site: Site) -> None:
    site.psql("DELETE FROM tinyapp_notes", f"osp_{SLUG}")
    shutil.rmtree(site.tenant_dir() / "data" / "files" / "2027")
    assert site.files() == {}

    site.cli("backup", "restore", SLUG, "--yes")
    notes = site.psql("SELECT body FROM tinyapp_notes ORDER BY id", f"osp_{SLUG}")
    assert notes == ["ordre du jour", "compte rendu"]
    assert site.files() == {"2027/plan.pdf": b"%PDF plan du bourg"}
    user = unix_user_prefix(site.root) + tenant_names(SLUG).unix_user
    restored = site.tenant_dir() / "data" / "files" / "2027" / "plan.pdf"
    assert restored.owner() == user
    assert site.health() == {"app": "tinyapp", "version": "1.0", "files": 1}
    assert site.json("tenant", "show", SLUG)["phase"] == "ready"


def test_delete_removes_its_process_files_user_and_database(site: Site) -> None:
    site.cli("tenant", "delete", SLUG, "--yes")
    assert not site.tenant_dir().exists()
    assert [d for d in site.psql("SELECT datname FROM pg_database") if SLUG in d] == []
    user = unix_user_prefix(site.root) + tenant_names(SLUG).unix_user
    assert user not in Path("/etc/passwd").read_text()
