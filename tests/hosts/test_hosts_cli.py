"""A hosts tenant's life through the real CLI: OpenSlides 3.3 with a topic and an
uploaded file on this machine (connection local), backed up to the local store, drilled
with a scratch OpenSlides, restored in place, cloned with ``--to``, its secrets rotated.

The tests of this module run in order and share one host root (fixture ``site``).
"""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.hosts.helpers import local_site

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1200)]

REPO = Path(__file__).resolve().parents[2]
PDF = b"%PDF-1.4 plan du quartier des Fontenelles " * 300


@dataclass
class Site:
    base: Path
    env: dict[str, str]
    https: int
    pg_port: int

    @property
    def root(self) -> Path:
        return self.base / "root"

    @property
    def ca(self) -> Path:
        return self.base / "data" / "ca" / "ca.crt"

    def cli(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [sys.executable, "-m", "osp_ops.cli", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        if ok:
            assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        return proc

    def json(self, *args: str) -> Any:
        return json.loads(self.cli(*args, "--json").stdout)

    def data_dir(self, slug: str) -> Path:
        return self.root / "srv" / "osp-ops" / slug / "data"

    def psql(self, sql: str, database: str = "postgres") -> list[str]:
        out = subprocess.run(
            ["runuser", "-u", "postgres", "--", "psql", "-h",
             str(self.root / "run" / "osp-ops" / "postgresql"), "-p", str(self.pg_port),
             "-XAtc", sql, database],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        return out.stdout.split()

    def databases(self) -> list[str]:
        return self.psql("SELECT datname FROM pg_database ORDER BY 1")


class OpenSlides:
    """The REST API of one tenant through nginx, logged in as its admin."""

    def __init__(self, site: Site, slug: str) -> None:
        self.host = f"{slug}.localhost"
        self.site = site
        password = site.json("tenant", "credentials", slug)["password"]
        self.client = httpx.Client(
            verify=ssl.create_default_context(cafile=str(site.ca)), timeout=60
        )
        r = self.request(
            "POST", "/apps/users/login/", json={"username": "admin", "password": password}
        )
        assert r.status_code == 200, r.text[:300]

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        origin = f"https://{self.host}:{self.site.https}"
        headers = {"Host": f"{self.host}:{self.site.https}", "Referer": origin + "/"}
        token = self.client.cookies.get("OpenSlidesCsrfToken")
        if token and method != "GET":
            headers["X-CSRFToken"] = token
        return self.client.request(
            method,
            f"https://127.0.0.1:{self.site.https}{path}",
            headers=headers,
            extensions={"sni_hostname": self.host},
            **kwargs,
        )

    def titles(self, collection: str) -> list[str]:
        r = self.request("GET", f"/rest/{collection}/")
        assert r.status_code == 200, r.text[:300]
        return sorted(item["title"] for item in r.json())

    def close(self) -> None:
        self.client.close()


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    spec = yaml.safe_load((REPO / "tenants" / "nanterre.yaml").read_text())
    with local_site("osp-b-", {"nanterre": spec}) as s:
        yield Site(base=s.base, env=s.env, https=s.https, pg_port=s.pg_port)


def _files(site: Site, slug: str) -> list[bytes]:
    return [p.read_bytes() for p in sorted((site.data_dir(slug) / "media").rglob("*.pdf"))]


def test_create_with_a_topic_and_an_uploaded_file(site: Site) -> None:
    site.cli("tenant", "create", "nanterre")
    app = OpenSlides(site, "nanterre")
    r = app.request("POST", "/rest/topics/topic/", json={"title": "Budget participatif 2027"})
    assert r.status_code == 201, r.text[:300]
    r = app.request(
        "POST",
        "/rest/mediafiles/mediafile/",
        data={"title": "Plan du quartier"},
        files={"mediafile": ("plan.pdf", PDF, "application/pdf")},
    )
    assert r.status_code == 201, r.text[:300]
    app.close()
    assert _files(site, "nanterre") == [PDF]


def test_backup_holds_database_files_and_row_counts(site: Site) -> None:
    site.cli("backup", "run", "nanterre")
    listing = site.json("backup", "list", "nanterre")["backups"]
    assert [b["state"] for b in listing] == ["complete"] and listing[0]["verified_at"]
    manifest_path = next((site.base / "data" / "backups").rglob("manifest.json"))
    manifest = json.loads(manifest_path.read_text())
    body = manifest.get("body", manifest)
    names = {o["name"].split(".")[0] for o in body["objects"]}
    assert {"db", "files", "spec"} <= names, names
    assert body["row_counts"]["topics_topic"] == 1
    assert body["row_counts"]["mediafiles_mediafile"] == 1
    assert body["postgres_version"] and "pg_dump" in body["pg_dump_version"]
    # Encrypted at rest: the PDF's text is nowhere in the store.
    for p in (site.base / "data" / "backups").rglob("*"):
        if p.is_file():
            assert b"plan du quartier" not in p.read_bytes()


def test_drill_starts_a_scratch_openslides_and_cleans_up(site: Site) -> None:
    out = site.cli("backup", "drill", "nanterre").stdout
    assert "drill ok" in out and "scratch app answered and admin logged in" in out, out
    assert not [d for d in site.databases() if "_drill_" in d]
    assert sorted(p.name for p in site.data_dir("nanterre").iterdir()) == ["media"]


def test_restore_brings_back_data_and_files_and_keeps_the_old_ones(site: Site) -> None:
    app = OpenSlides(site, "nanterre")
    assert app.request("DELETE", "/rest/topics/topic/1/").status_code == 204
    assert app.request("DELETE", "/rest/mediafiles/mediafile/1/").status_code == 204
    r = app.request("POST", "/rest/topics/topic/", json={"title": "Écrit après la sauvegarde"})
    assert r.status_code == 201
    app.close()
    assert _files(site, "nanterre") == []

    site.cli("backup", "restore", "nanterre", "--yes")
    app = OpenSlides(site, "nanterre")  # the admin password is the backup's (unchanged)
    assert app.titles("topics/topic") == ["Budget participatif 2027"]
    assert app.titles("mediafiles/mediafile") == ["Plan du quartier"]
    app.close()
    assert _files(site, "nanterre") == [PDF]
    show = site.json("tenant", "show", "nanterre")
    assert show["phase"] == "ready", show

    retired = site.cli("backup", "list-retired", "nanterre").stdout.split()
    assert len(retired) == 2 and retired[0].startswith("osp_nanterre_old_"), retired
    assert retired[1].startswith("media.old-")
    site.cli("backup", "restore", "nanterre", "--confirm-drop", "--yes")
    assert site.cli("backup", "list-retired", "nanterre").stdout.split() == []
    assert "osp_nanterre" in site.databases()


def test_clone_from_a_backup_is_a_new_tenant_with_its_own_admin(site: Site) -> None:
    site.cli("backup", "restore", "nanterre", "--to", "nanterre-copie")
    spec = yaml.safe_load((site.base / "tenants" / "nanterre-copie.yaml").read_text())
    assert spec["labels"]["clone-of"] == "nanterre"
    assert spec["hosts"]["primary"] == "nanterre-copie.localhost"
    copy = OpenSlides(site, "nanterre-copie")  # logs in with the clone's own password
    assert copy.titles("topics/topic") == ["Budget participatif 2027"]
    assert copy.titles("mediafiles/mediafile") == ["Plan du quartier"]
    copy.close()
    assert _files(site, "nanterre-copie") == [PDF]
    source = site.json("tenant", "credentials", "nanterre")["password"]
    clone = site.json("tenant", "credentials", "nanterre-copie")["password"]
    assert source != clone
    # The clone's empty start is not kept as retired data; the source is untouched.
    assert site.cli("backup", "list-retired", "nanterre-copie").stdout.split() == []
    assert site.json("tenant", "show", "nanterre-copie")["phase"] == "ready"
    app = OpenSlides(site, "nanterre")
    assert app.titles("topics/topic") == ["Budget participatif 2027"]
    app.close()


def test_rotating_every_secret_keeps_the_instance_working(site: Site) -> None:
    old = site.json("tenant", "credentials", "nanterre")["password"]
    settings = site.root / "srv/osp-ops/nanterre/config/settings.py"
    old_settings = settings.read_text()
    out = site.cli("secrets", "rotate", "nanterre")
    new = site.json("tenant", "credentials", "nanterre")["password"]
    assert new != old and new not in out.stdout + out.stderr
    assert settings.read_text() != old_settings  # new DB password and secret key
    app = OpenSlides(site, "nanterre")  # the new admin password; the DB answers
    assert app.titles("topics/topic") == ["Budget participatif 2027"]
    app.close()
    refused = OpenSlides.__new__(OpenSlides)
    refused.host, refused.site = "nanterre.localhost", site
    refused.client = httpx.Client(verify=ssl.create_default_context(cafile=str(site.ca)))
    r = refused.request("POST", "/apps/users/login/", json={"username": "admin", "password": old})
    assert r.status_code == 400, r.text[:200]
    refused.close()
    assert site.json("tenant", "show", "nanterre")["phase"] == "ready"


def test_after_a_rotation_the_older_backup_drills_and_restores_with_the_current_admin(
    site: Site,
) -> None:
    # The latest backup was taken before the rotation: its admin has the old password.
    [latest, *_] = site.json("backup", "list", "nanterre")["backups"]
    rotated = [
        datetime.fromisoformat(e["at"]).replace(tzinfo=UTC)  # the state DB's UTC
        for e in site.json("audit", "list", "--tenant", "nanterre")
        if e["action"] == "secrets.rotated"
    ]
    assert rotated and datetime.fromisoformat(latest["taken_at"]) < min(rotated), latest
    out = site.cli("backup", "drill", "nanterre").stdout
    assert "drill ok" in out and "scratch app answered and admin logged in" in out, out

    site.cli("backup", "restore", "nanterre", "--yes")
    app = OpenSlides(site, "nanterre")  # logs in with the password of tenant credentials
    assert app.titles("topics/topic") == ["Budget participatif 2027"]
    app.close()
    health = site.json("tenant", "show", "nanterre")["health"]
    assert health["ok"] and health["checks"]["admin login"] == "ok", health


def test_tenant_show_is_unhealthy_when_the_admin_password_is_refused(site: Site) -> None:
    site.psql("UPDATE users_user SET password = '!' WHERE username = 'admin'", "osp_nanterre")
    health = site.json("tenant", "show", "nanterre")["health"]
    assert not health["ok"], health
    assert health["checks"]["admin login"].startswith("admin refused (HTTP 400"), health
    assert "unhealthy" in site.cli("tenant", "show", "nanterre").stdout
    # A rotation of the admin password bootstraps it again, and checks the login.
    site.cli("secrets", "rotate", "nanterre", "--name", "admin_password")
    assert site.json("tenant", "show", "nanterre")["health"]["ok"]


def test_deleting_a_tenant_drops_what_restores_left_beside_it(site: Site) -> None:
    # A retired database of the clone (as a restore leaves it), owned by its role.
    site.psql('CREATE DATABASE osp_nanterre_copie_old_1 OWNER "osp_nanterre_copie"')
    site.cli("tenant", "delete", "nanterre-copie", "--yes")
    assert [d for d in site.databases() if d.startswith("osp_nanterre_copie")] == []
    assert site.psql("SELECT rolname FROM pg_roles WHERE rolname = 'osp_nanterre_copie'") == []
    # nanterre's own database is not the clone's, although its name is a prefix of it.
    assert "osp_nanterre" in site.databases()
    app = OpenSlides(site, "nanterre")
    assert app.titles("topics/topic") == ["Budget participatif 2027"]
    app.close()
