"""A real OpenSlides 3.2 -> 3.3 upgrade on the hosts platform (this machine, connection
local), through the real CLI.

One tenant, shared by the tests of this module in order (an OpenSlides create costs
minutes): it is created at 3.2 from its pinned lock and given data through the app's
REST API (a user, a topic with its agenda item, a motion, an uploaded file). An upgrade
whose backup gate fails (the backup store cannot be written) stops before anything is
touched; the real `upgrade run` then takes it to 3.3 with every record and file, the
admin login, the version endpoint saying 3.3, 3.3's settings, and the 3.2 virtualenv
still on disk for a way back. Before it, an upgrade whose migration fails for real (a
column one of 3.3's migrations adds was made beforehand) rolls back by itself: the
tenant serves 3.2 with all its data, the database the upgrade touched is kept; and one
whose CLI is killed (SIGKILL) right after the deploy of 3.3 rolls back when `op retry`
resumes it.
"""

from __future__ import annotations

import hashlib
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.hosts.helpers import local_site
from tests.hosts.test_hosts_cli import PDF, OpenSlides, Site

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]

REPO = Path(__file__).resolve().parents[2]
SLUG = "suresnes"


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    spec = yaml.safe_load((REPO / "tenants" / "nanterre.yaml").read_text())
    spec |= {"slug": SLUG, "name": "Ville de Suresnes", "hosts": {"primary": f"{SLUG}.localhost"}}
    spec["app"]["version"] = "3.2"
    with local_site("osp-u-", {SLUG: spec}) as s:
        yield Site(base=s.base, env=s.env, https=s.https, pg_port=s.pg_port)


def _set_version(site: Site, version: str) -> None:
    path = site.base / "tenants" / f"{SLUG}.yaml"
    spec = yaml.safe_load(path.read_text())
    spec["app"]["version"] = version
    path.write_text(yaml.safe_dump(spec, allow_unicode=True))


def _version(app: OpenSlides) -> str:
    r = app.request("GET", "/apps/core/version/")
    assert r.status_code == 200, r.text[:300]
    return str(r.json()["openslides_version"])


def _content(app: OpenSlides) -> dict[str, Any]:
    """What the tenant holds, as its API shows it (ids and the fields the test set)."""

    def rows(collection: str, *fields: str) -> list[tuple[Any, ...]]:
        r = app.request("GET", f"/rest/{collection}/")
        assert r.status_code == 200, r.text[:300]
        return sorted(tuple(item.get(f) for f in ("id", *fields)) for item in r.json())

    return {
        "users": rows("users/user", "username", "first_name", "last_name"),
        "topics": rows("topics/topic", "title", "text"),
        "agenda": rows("agenda/item", "content_object"),
        "motions": rows("motions/motion", "title", "text"),
        "mediafiles": rows("mediafiles/mediafile", "title"),
    }


def _files(site: Site) -> list[str]:
    media = site.data_dir(SLUG) / "media"
    return sorted(hashlib.sha256(p.read_bytes()).hexdigest() for p in media.rglob("*.pdf"))


def _venv(site: Site, version: str) -> Path:
    return site.root / "srv" / "osp-ops" / "venvs" / f"openslides-{version}"


def _settings(site: Site) -> str:
    return (site.root / "srv" / "osp-ops" / SLUG / "config" / "settings.py").read_text()


BEFORE: dict[str, Any] = {}


def test_create_32_from_its_lock_with_data(site: Site) -> None:
    site.cli("tenant", "create", SLUG)
    assert site.json("tenant", "show", SLUG)["observed_version"] == "3.2"
    app = OpenSlides(site, SLUG)
    assert _version(app) == "3.2"
    r = app.request(
        "POST",
        "/rest/users/user/",
        json={"username": "marie.dupont", "first_name": "Marie", "last_name": "Dupont"},
    )
    assert r.status_code == 201, r.text[:300]
    r = app.request(
        "POST",
        "/rest/topics/topic/",
        json={"title": "Budget participatif 2027", "text": "<p>Ordre du jour</p>"},
    )
    assert r.status_code == 201, r.text[:300]
    r = app.request(
        "POST",
        "/rest/motions/motion/",
        json={"title": "Piste cyclable rue de la République", "text": "<p>Le conseil…</p>"},
    )
    assert r.status_code == 201, r.text[:300]
    r = app.request(
        "POST",
        "/rest/mediafiles/mediafile/",
        data={"title": "Plan du quartier"},
        files={"mediafile": ("plan.pdf", PDF, "application/pdf")},
    )
    assert r.status_code == 201, r.text[:300]
    content = _content(app)
    app.close()
    assert [u[1] for u in content["users"]] == ["admin", "marie.dupont"]
    assert [t[1] for t in content["topics"]] == ["Budget participatif 2027"]
    # The topic and the motion each have their agenda item.
    assert sorted(i[1]["collection"] for i in content["agenda"]) == [
        "motions/motion",
        "topics/topic",
    ]
    assert [m[1] for m in content["motions"]] == ["Piste cyclable rue de la République"]
    assert len(_files(site)) == 1
    BEFORE.update(content=content, files=_files(site), settings=_settings(site))
    assert "EMAIL_USE_TLS" not in BEFORE["settings"]  # 3.2's settings have no such key


def test_a_failed_backup_gate_stops_the_upgrade_before_anything_changes(site: Site) -> None:
    _set_version(site, "3.3")
    blocker = site.base / "not-a-directory"
    blocker.write_text("the backup store cannot be made under a file\n")
    env = dict(site.env, OSP_OPS_BACKUP_URL=f"file://{blocker / 'backups'}")
    proc = subprocess.run(
        [*_cli(), "upgrade", "run", SLUG], env=env, capture_output=True, text=True, timeout=900
    )
    assert proc.returncode != 0, proc.stdout[-2000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    op = site.json("op", "list", "--tenant", SLUG)[0]  # newest first
    assert (op["kind"], op["status"]) == ("upgrade", "failed"), op
    show = site.json("tenant", "show", SLUG)
    assert (show["phase"], show["observed_version"]) == ("ready", "3.2"), show
    # Nothing of 3.3 is on the host; the tenant serves 3.2 with all its data.
    assert not _venv(site, "3.3").exists()
    assert _settings(site) == BEFORE["settings"]
    app = OpenSlides(site, SLUG)
    assert _version(app) == "3.2"
    assert _content(app) == BEFORE["content"]
    app.close()
    assert _files(site) == BEFORE["files"]


def _sql(site: Site, database: str, sql: str) -> list[str]:
    """``sql`` in one of the host's databases, as its superuser."""
    out = subprocess.run(
        ["runuser", "-u", "postgres", "--", "psql", "-h",
         str(site.root / "run" / "osp-ops" / "postgresql"), "-p", str(site.pg_port),
         "-XAtc", sql, database],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return out.stdout.split()


DB = f"osp_{SLUG}"
# A column one of 3.3's migrations adds (users 0015, vote delegation): made beforehand,
# it makes that migration fail for real ("already exists") after earlier ones of 3.3
# have run. 3.2 does not know the column and works with it.
BLOCKER = "ALTER TABLE users_user ADD COLUMN vote_delegated_to_id integer"


def test_a_failing_migration_of_the_hop_rolls_back_to_32(site: Site) -> None:
    _set_version(site, "3.3")
    _sql(site, DB, BLOCKER)
    migrations = _sql(site, DB, "SELECT count(*) FROM django_migrations")
    proc = subprocess.run(
        [*_cli(), "upgrade", "run", SLUG], env=site.env, capture_output=True, text=True,
        timeout=1500,
    )  # fmt: skip
    assert proc.returncode == 8, (proc.stdout[-3000:], proc.stderr[-3000:])
    errors = [line for line in proc.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "rolled back" in errors[0], proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    # The record says what failed and how the tenant was put back.
    upgrade = site.json("upgrade", "history", SLUG)["upgrades"][0]
    assert (upgrade["state"], upgrade["failed_step"]) == ("rolled-back", "deploy@3.3"), upgrade
    assert "vote_delegated_to_id" in upgrade["error"], upgrade["error"]
    assert [r["status"] for r in upgrade["rollback"]] == ["done"] * 10, upgrade["rollback"]
    show = site.json("tenant", "show", SLUG)
    assert (show["phase"], show["observed_version"]) == ("ready", "3.2"), show
    assert "rolled back to 3.2: deploy@3.3 failed" in show["reason"], show
    # It serves 3.2 with every record and file; the admin logs in.
    app = OpenSlides(site, SLUG)
    assert _version(app) == "3.2"
    assert _content(app) == BEFORE["content"]
    app.close()
    assert _files(site) == BEFORE["files"]
    assert _settings(site) == BEFORE["settings"]
    assert _sql(site, DB, "SELECT count(*) FROM django_migrations") == migrations
    # What the failed upgrade touched is kept beside the live data (3.3's migrations that
    # ran before the failing one are in that database), and both virtualenvs stay.
    retired = site.json("backup", "list-retired", SLUG)["retired"]
    old_db = [n for n in retired if n.startswith(f"{DB}_old_")]
    assert len(old_db) == 1 and [n for n in retired if n.startswith("media.old-")], retired
    touched = _sql(site, old_db[0], "SELECT count(*) FROM django_migrations")
    assert int(touched[0]) > int(migrations[0]), (touched, migrations)
    assert (_venv(site, "3.2") / "bin" / "openslides").exists()
    assert (_venv(site, "3.3") / "bin" / "openslides").exists()
    _sql(site, DB, BLOCKER.replace("ADD COLUMN", "DROP COLUMN").removesuffix(" integer"))


def test_a_kill_during_deploy_then_op_retry_rolls_back_to_32(site: Site) -> None:
    _set_version(site, "3.3")
    env = dict(site.env, OSP_OPS_FAILPOINT="after-step:deploy@3.3")
    killed = subprocess.run(
        [*_cli(), "upgrade", "run", SLUG], env=env, capture_output=True, text=True,
        timeout=1500,
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, (killed.stdout[-2000:], killed.stderr[-2000:])
    op = site.json("op", "list", "--tenant", SLUG)[0]
    assert (op["kind"], op["status"]) == ("upgrade", "interrupted"), op
    # The kill came after 3.3 was deployed and migrated: its settings are on disk.
    assert "OpenSlides 3.3 settings" in _settings(site)
    retry = subprocess.run(
        [*_cli(), "op", "retry", op["id"]], env=site.env, capture_output=True, text=True,
        timeout=1500,
    )  # fmt: skip
    assert retry.returncode == 8, (retry.stdout[-3000:], retry.stderr[-3000:])
    upgrade = site.json("upgrade", "history", SLUG)["upgrades"][0]
    assert (upgrade["operation"], upgrade["state"]) == (op["id"], "rolled-back"), upgrade
    assert upgrade["failed_step"] == "deploy@3.3" and "cut off" in upgrade["error"], upgrade
    show = site.json("tenant", "show", SLUG)
    assert (show["phase"], show["observed_version"]) == ("ready", "3.2"), show
    app = OpenSlides(site, SLUG)
    assert _version(app) == "3.2"
    assert _content(app) == BEFORE["content"]
    app.close()
    assert _files(site) == BEFORE["files"]
    assert _settings(site) == BEFORE["settings"]


def test_upgrade_to_33_keeps_every_record_and_file(site: Site) -> None:
    plan = site.json("upgrade", "plan")["plans"][0]
    assert (plan["current"], plan["path"]) == ("3.2", ["3.3"])
    out = site.cli("upgrade", "run", SLUG).stdout
    assert "upgrade suresnes: succeeded (3.2 → 3.3)" in out, out
    show = site.json("tenant", "show", SLUG)
    assert (show["phase"], show["observed_version"]) == ("ready", "3.3"), show
    app = OpenSlides(site, SLUG)  # the admin logs in with the same password
    assert _version(app) == "3.3"
    assert _content(app) == BEFORE["content"]
    app.close()
    assert _files(site) == BEFORE["files"]
    settings = _settings(site)
    for line in ("EMAIL_USE_SSL = False", "EMAIL_USE_TLS = False", "EMAIL_TIMEOUT = None"):
        assert line in settings
    assert "OpenSlides 3.3 settings" in settings
    # The 3.2 virtualenv stays for a way back; the backup the gate took is complete
    # (after the ones of the two rolled-back upgrades).
    assert (_venv(site, "3.2") / "bin" / "openslides").exists()
    assert (_venv(site, "3.3") / "bin" / "openslides").exists()
    backups = site.json("backup", "list", SLUG)["backups"]
    assert [b["state"] for b in backups] == ["complete"] * 3 and backups[-1]["verified_at"]
    assert site.json("upgrade", "plan")["plans"][0]["path"] == []


def _cli() -> list[str]:
    import sys

    return [sys.executable, "-m", "osp_ops.cli"]
