"""Every operation resumes from its own command: kill -9 of `backup restore`, then the
same command again resumes the interrupted operation (shown as `interrupted`, never
`running`); other parameters are refused naming it; what it staged is listed with the
retired data and dropped by `--confirm-drop`; `op retry` of a superseded restore is
refused."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from osp_ops.domain.names import db_name_for
from osp_ops.platforms.data import with_database
from osp_ops.platforms.pgtenant import TenantDatabases
from tests.factories import spec_data
from tests.fixtures.postgres import PostgresServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


class Site:
    def __init__(self, tmp_path: Path, postgres: PostgresServer) -> None:
        self.slug = f"r{secrets.token_hex(3)}"
        self.env = {
            **os.environ,
            "OSP_OPS_DATA_DIR": str(tmp_path / "data"),
            "OSP_OPS_TENANTS_DIR": str(tmp_path / "tenants"),
            "OSP_OPS_PLATFORM_DB_ADMIN_DSN": postgres.dsn,
            "OSP_OPS_FAKE_PLATFORM_JOURNAL": str(tmp_path / "platform.json"),
            "OSP_OPS_PLATFORM": "osp_ops.platforms.fake:journal_platform",
            "OSP_OPS_RETRY_BASE_DELAY": "0",
            "COLUMNS": "200",
        }
        (tmp_path / "tenants").mkdir()
        spec = spec_data(self.slug, platform="kubernetes")
        (tmp_path / "tenants" / f"{self.slug}.yaml").write_text(yaml.safe_dump(spec))
        self.ok("tenant", "create", self.slug)
        dbs = TenantDatabases(postgres.dsn)
        try:
            dbs.ensure(self.slug, "pw-" + secrets.token_hex(8))
        finally:
            dbs.close()
        self.live = with_database(postgres.dsn, db_name_for(self.slug))
        self.sql("CREATE TABLE decidim_users (id serial PRIMARY KEY, body text)")

    def cli(self, *args: str, failpoint: str | None = None) -> subprocess.CompletedProcess[str]:
        env = {**self.env, **({"OSP_OPS_FAILPOINT": failpoint} if failpoint else {})}
        return subprocess.run([sys.executable, "-m", "osp_ops.cli", *args], env=env,
                              capture_output=True, text=True, timeout=240, check=False)  # fmt: skip

    def ok(self, *args: str) -> str:
        proc = self.cli(*args)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        return proc.stdout

    def sql(self, query: str) -> None:
        with psycopg.connect(self.live, autocommit=True) as conn:
            conn.execute(query)

    def count(self) -> int:
        with psycopg.connect(self.live) as conn:
            row = conn.execute("SELECT count(*) FROM decidim_users").fetchone()
            assert row is not None
            return int(row[0])

    def backup(self, rows: int) -> str:
        self.sql(
            f"INSERT INTO decidim_users (body) SELECT 'u' || g FROM generate_series(1, {rows}) g"
        )
        out = self.ok("backup", "run", self.slug)
        return out.split("verified ")[1].split("/")[1].split(":")[0]

    def restores(self) -> list[dict[str, Any]]:
        ops = json.loads(self.ok("op", "list", "--tenant", self.slug, "--json"))
        return [o for o in ops if o["kind"] == "restore"]

    def retired(self) -> list[str]:
        return list(json.loads(self.ok("backup", "list-retired", self.slug, "--json"))["retired"])


def test_a_killed_restore_is_interrupted_and_its_own_command_resumes_it(
    tmp_path: Path, postgres: PostgresServer
) -> None:
    site = Site(tmp_path, postgres)
    site.backup(40)
    site.sql("INSERT INTO decidim_users (body) VALUES ('after the backup')")
    killed = site.cli("backup", "restore", site.slug, "--yes",
                      failpoint="after-step:restore-to-new-database")  # fmt: skip
    assert killed.returncode == -9, killed.stderr[-1000:]
    [restore] = site.restores()
    assert restore["status"] == "interrupted"  # its runner is gone: never `running`
    staged = restore["params"]["target_database"]
    assert staged in site.retired()  # what it staged is tracked

    again = site.cli("backup", "restore", site.slug, "--yes")
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    assert f"resuming pending operation {restore['id']}" in again.stdout
    assert [(o["id"], o["status"]) for o in site.restores()] == [(restore["id"], "succeeded")]
    assert site.count() == 40
    assert staged not in site.retired()  # switched in: it is the live database now


def test_other_parameters_are_refused_staging_dropped_superseded_retry_refused(
    tmp_path: Path, postgres: PostgresServer
) -> None:
    site = Site(tmp_path, postgres)
    first = site.backup(10)
    second = site.backup(5)  # 15 rows
    killed = site.cli("backup", "restore", site.slug, "--yes", "--backup", first,
                      failpoint="after-step:restore-to-new-database")  # fmt: skip
    assert killed.returncode == -9, killed.stderr[-1000:]
    [old] = site.restores()

    other = site.cli("backup", "restore", site.slug, "--yes", "--backup", second)
    assert other.returncode == 4, other.stdout + other.stderr
    assert f"interrupted restore operation {old['id']}" in other.stderr
    assert "backup_id" in other.stderr
    assert len(site.restores()) == 1  # nothing new was recorded

    staged = old["params"]["target_database"]
    assert staged in site.retired()
    site.ok("backup", "restore", site.slug, "--confirm-drop", "--yes")
    assert site.retired() == []
    assert [o["status"] for o in site.restores()] == ["cancelled"]  # nobody resumes it now

    site.ok("backup", "restore", site.slug, "--yes", "--backup", second)
    assert site.count() == 15
    retry = site.cli("op", "retry", old["id"])
    assert retry.returncode == 4, retry.stdout + retry.stderr
    assert "superseded" in retry.stderr
    assert site.count() == 15  # the older backup was not put back


def test_a_drill_clears_what_a_killed_drill_left(tmp_path: Path, postgres: PostgresServer) -> None:
    site = Site(tmp_path, postgres)
    site.backup(3)
    left = f"{db_name_for(site.slug)}_drill_abc123"  # as a drill killed midway leaves it
    with psycopg.connect(postgres.dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{left}"')
    assert left in site.retired()  # tracked
    site.ok("backup", "drill", site.slug)
    assert site.retired() == []
