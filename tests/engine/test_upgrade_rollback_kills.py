"""Killed upgrades roll back: the real CLI killed with SIGKILL (``OSP_OPS_FAILPOINT``)
during an upgrade's deploy, then during its rollback; `op retry` and `upgrade recover`
finish the rollback. The tenant ends ready on its old version with its data, what the
failed upgrade touched is kept, nothing staged is left. The app platform is the journal
fake; the tenant's database is real (the PostgreSQL fixture as the shared server).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
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

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

NEW = "0.28.4"


class World:
    """One Decidim tenant at 0.27.7 (25 users in its real database), and the CLI."""

    def __init__(self, tmp_path: Path, postgres: PostgresServer) -> None:
        self.postgres = postgres
        self.slug = f"rk{secrets.token_hex(3)}"
        self.tenants = tmp_path / "tenants"
        self.tenants.mkdir()
        self.journal = tmp_path / "platform.json"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("OSP_OPS_")},
            "OSP_OPS_DATA_DIR": str(tmp_path / "data"),
            "OSP_OPS_TENANTS_DIR": str(self.tenants),
            "OSP_OPS_PLATFORM_DB_ADMIN_DSN": postgres.dsn,
            "OSP_OPS_FAKE_PLATFORM_JOURNAL": str(self.journal),
            "OSP_OPS_PLATFORM": "osp_ops.platforms.fake:journal_platform",
            "OSP_OPS_RETRY_BASE_DELAY": "0",
            "COLUMNS": "200",
        }
        self.spec("0.27.7")
        self.ok("tenant", "create", self.slug)
        dbs = TenantDatabases(postgres.dsn)
        try:
            dbs.ensure(self.slug, "pw-" + secrets.token_hex(8))
        finally:
            dbs.close()
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute("CREATE TABLE decidim_users (id serial PRIMARY KEY, name text)")
            conn.execute(
                "INSERT INTO decidim_users (name) SELECT 'u' || g FROM generate_series(1, 25) g"
            )

    def spec(self, version: str) -> None:
        spec = spec_data(self.slug, version=version, platform="kubernetes")
        (self.tenants / f"{self.slug}.yaml").write_text(yaml.safe_dump(spec))

    def dsn(self, database: str | None = None) -> str:
        return with_database(self.postgres.dsn, database or db_name_for(self.slug))

    def run(self, *args: str, failpoint: str | None = None) -> subprocess.CompletedProcess[str]:
        env = dict(self.env, **({"OSP_OPS_FAILPOINT": failpoint} if failpoint else {}))
        return subprocess.run(
            [sys.executable, "-m", "osp_ops.cli", *args], env=env, capture_output=True,
            text=True, timeout=300, check=False,
        )  # fmt: skip

    def ok(self, *args: str) -> str:
        proc = self.run(*args)
        assert proc.returncode == 0, (args, proc.stdout[-2000:], proc.stderr[-2000:])
        return proc.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--json"))

    def killed(self, *args: str, failpoint: str) -> None:
        proc = self.run(*args, failpoint=failpoint)
        assert proc.returncode == -signal.SIGKILL, (failpoint, proc.stdout, proc.stderr[-2000:])

    def upgrade_op(self) -> dict[str, Any]:
        ops = [o for o in self.json("op", "list", "--tenant", self.slug) if o["kind"] == "upgrade"]
        assert len(ops) == 1, ops
        return ops[0]  # type: ignore[no-any-return]

    def users(self, database: str | None = None) -> int:
        with psycopg.connect(self.dsn(database)) as conn:
            row = conn.execute("SELECT count(*) FROM decidim_users").fetchone()
        assert row is not None
        return int(row[0])

    def world(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.journal.read_text())["world"]
        return data

    def retired(self) -> list[str]:
        names: list[str] = self.json("backup", "list-retired", self.slug)["retired"]
        return names

    def check_rolled_back(self, *, cause: str) -> None:
        """Ready on 0.27.7 with its data; the record says what failed; the database the
        upgrade had is retired, kept; nothing staged left, nothing running."""
        show = self.json("tenant", "show", self.slug)
        assert (show["phase"], show["observed_version"]) == ("ready", "0.27.7"), show
        assert "rolled back to 0.27.7" in show["reason"], show
        assert self.world()[self.slug] == {
            "provisioned": "yes",
            "version": "0.27.7",
            "running": "yes",
        }
        assert self.users() == 25
        op = self.upgrade_op()
        assert op["status"] == "rolled-back", op
        upgrades = self.json("upgrade", "history", self.slug)["upgrades"]
        assert [(u["state"], u["failed_step"]) for u in upgrades] == [
            ("rolled-back", f"deploy@{NEW}")
        ]
        assert cause in upgrades[0]["error"], upgrades
        assert {r["status"] for r in upgrades[0]["rollback"]} == {"done"}
        retired = self.retired()
        assert len(retired) == 1 and re.search(r"_old_\d{14}$", retired[0]), retired
        assert self.users(retired[0]) == 25
        refused = self.run("op", "retry", op["id"])
        assert refused.returncode == 4 and "rolled back" in refused.stderr, refused.stderr


@pytest.fixture
def world(tmp_path: Path, postgres: PostgresServer) -> World:
    return World(tmp_path, postgres)


def test_kill_during_deploy_then_op_retry_rolls_back(world: World) -> None:
    world.spec(NEW)
    world.killed("upgrade", "run", world.slug, failpoint=f"after-step:deploy@{NEW}")
    op = world.upgrade_op()
    assert op["status"] == "interrupted"
    assert world.world()[world.slug]["version"] == NEW  # the new version was deployed
    proc = world.run("op", "retry", op["id"])
    assert proc.returncode == 8, (proc.stdout[-2000:], proc.stderr[-2000:])
    assert f"deploy@{NEW} failed: cut off" in proc.stderr, proc.stderr
    world.check_rolled_back(cause="cut off: its runner died while it ran")
    # A scheduled `upgrade run --all` does not try the same hop again by itself...
    again = world.run("upgrade", "run", "--all")
    assert again.returncode == 1, (again.stdout, again.stderr)
    assert f"{world.slug}: skipped: its last upgrade 0.27.7 → {NEW} was rolled back" in again.stdout
    # ...naming the tenant does: a new attempt with its own gate backup.
    assert f"upgrade {world.slug}: succeeded (0.27.7 → {NEW})" in world.ok(
        "upgrade", "run", world.slug
    )
    assert world.json("tenant", "show", world.slug)["observed_version"] == NEW


def test_kill_during_the_rollback_then_op_retry_and_recover(world: World) -> None:
    world.spec(NEW)
    world.killed("upgrade", "run", world.slug, failpoint=f"after-step:deploy@{NEW}")
    op = world.upgrade_op()
    # The retry rolls back, and is killed once the backup is in its new database.
    world.killed("op", "retry", op["id"], failpoint="after-step:rollback-restore-database")
    show = world.json("tenant", "show", world.slug)
    assert show["phase"] == "rolling-back", show
    history = world.json("upgrade", "history", world.slug)["upgrades"]
    assert history[0]["state"] == "interrupted", history
    # What the killed rollback staged is its to finish, never a leftover to drop.
    assert world.retired() == []
    # Retried, killed again right after the switch of the databases.
    world.killed("op", "retry", op["id"], failpoint="after-step:rollback-switch-database")
    out = world.ok("upgrade", "recover", world.slug)
    assert "rolled back to 0.27.7" in out, out
    world.check_rolled_back(cause="cut off")
