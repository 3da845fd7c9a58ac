"""kill -9 of `osp-ops backup restore` at each step boundary, then `osp-ops op retry`.

The real CLI in a subprocess; the tenant's database is real (the PostgreSQL fixture as
the shared server of ``platform_db_admin_dsn``), the app platform is the journal fake
(``OSP_OPS_FAKE_PLATFORM_JOURNAL``), which counts the suspend/resume that really happened.
After the retry, the live database holds the backup's rows, the replaced one is retired
exactly once, no half-restored database is left and the app was stopped and started once.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
import yaml

from osp_ops.domain.libpq import libpq_env
from osp_ops.domain.names import db_name_for
from osp_ops.platforms.data import PsqlAdmin, with_database
from osp_ops.platforms.pgtenant import TenantDatabases
from tests.factories import spec_data
from tests.fixtures.postgres import PostgresServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

BOUNDARIES = [
    "after-step:verify-backup",
    "after-step:restore-to-new-database",
    "after-step:stop-app",
    "after-step:switch-database",
    "step-recorded:switch-database",
    "after-step:switch-files",
    "before-step:start-app",
    "after-step:start-app",
]


def _cli(
    env: dict[str, str], *args: str, failpoint: str | None = None
) -> subprocess.CompletedProcess[str]:
    run_env = {**env, **({"OSP_OPS_FAILPOINT": failpoint} if failpoint else {})}
    return subprocess.run(
        [sys.executable, "-m", "osp_ops.cli", *args],
        env=run_env, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip


def _ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc.stdout


def _count(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM decidim_users").fetchone()
        assert row is not None
        return int(row[0])


@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_restore_killed_at_a_boundary_resumes(
    boundary: str, tmp_path: Path, postgres: PostgresServer
) -> None:
    slug = f"k{secrets.token_hex(3)}"
    journal = tmp_path / "platform.json"
    env = {
        **os.environ,
        "OSP_OPS_DATA_DIR": str(tmp_path / "data"),
        "OSP_OPS_TENANTS_DIR": str(tmp_path / "tenants"),
        "OSP_OPS_PLATFORM_DB_ADMIN_DSN": postgres.dsn,
        "OSP_OPS_FAKE_PLATFORM_JOURNAL": str(journal),
        "OSP_OPS_PLATFORM": "osp_ops.platforms.fake:journal_platform",
        "OSP_OPS_RETRY_BASE_DELAY": "0",
        "COLUMNS": "200",
    }
    (tmp_path / "tenants").mkdir()
    spec = spec_data(slug, platform="kubernetes")
    (tmp_path / "tenants" / f"{slug}.yaml").write_text(yaml.safe_dump(spec))
    _ok(_cli(env, "tenant", "create", slug))
    # The tenant database, as the kubernetes platform would create it.
    dbs = TenantDatabases(postgres.dsn)
    try:
        dbs.ensure(slug, "pw-" + secrets.token_hex(8))
    finally:
        dbs.close()
    live = with_database(postgres.dsn, db_name_for(slug))
    with psycopg.connect(live, autocommit=True) as conn:
        conn.execute("CREATE TABLE decidim_users (id serial PRIMARY KEY, body text)")
        conn.execute(
            "INSERT INTO decidim_users (body) SELECT 'u' || g FROM generate_series(1, 40) g"
        )
    _ok(_cli(env, "backup", "run", slug))
    with psycopg.connect(live, autocommit=True) as conn:
        conn.execute("INSERT INTO decidim_users (body) VALUES ('after the backup')")

    killed = _cli(env, "backup", "restore", slug, "--yes", failpoint=boundary)
    assert killed.returncode == -9, killed.stdout[-1000:] + killed.stderr[-1000:]
    ops = json.loads(_ok(_cli(env, "op", "list", "--tenant", slug, "--json")))
    restore = next(o for o in ops if o["kind"] == "restore")
    assert restore["status"] != "succeeded"
    _ok(_cli(env, "op", "retry", restore["id"]))

    assert _count(live) == 40  # the backup's rows, under the tenant's own name
    admin_env = libpq_env(postgres.dsn)
    admin = PsqlAdmin(
        psql=("psql",), env=admin_env, maintenance_db=admin_env.pop("PGDATABASE", "postgres")
    )
    names = admin.list(f"{db_name_for(slug)}%")
    retired = [n for n in names if "_old_" in n]
    assert len(retired) == 1, names
    assert _count(with_database(postgres.dsn, retired[0])) == 41  # what the restore replaced
    assert [n for n in names if "_r2" in n] == [], names  # no half-restored database left
    effects = [e for e in json.loads(journal.read_text())["effects"] if e[1] == slug]
    assert effects.count(["suspend", slug]) == 1 and effects.count(["resume", slug]) == 1, effects
    assert effects[-1] == ["resume", slug]
