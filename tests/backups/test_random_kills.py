"""Random kills: each long command killed with SIGKILL at a seeded random moment, then the
same command again; the tenant converges, no operation stays running or interrupted,
nothing staged is orphaned, and every backup listed as verified verifies.

Commands: tenant create, tenant apply, backup run, backup restore (in place and --to),
backup drill, tenant delete; the real CLI, the tenant's database real (the PostgreSQL
fixture as the shared server), the app platform the journal fake. Kills per command:
``OSP_OPS_TEST_KILLS`` (3 by default; 20 for the long run), seed ``OSP_OPS_TEST_SEED``.
The counts are printed (-s shows them).
"""

from __future__ import annotations

import json
import os
import random
import re
import secrets
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import psycopg
import pytest
import yaml

from osp_ops.domain.names import db_name_for
from osp_ops.platforms.data import with_database
from osp_ops.platforms.pgtenant import TenantDatabases
from tests.factories import spec_data
from tests.fixtures.postgres import PostgresServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(3600)]

KILLS = int(os.environ.get("OSP_OPS_TEST_KILLS", "3"))
SEED = int(os.environ.get("OSP_OPS_TEST_SEED", "20261201"))
STAGED = re.compile(r"_r\d{14}$|_drill_[0-9a-f]{6}$|^media\.(restore|drill)-")


class World:
    def __init__(self, tmp_path: Path, postgres: PostgresServer) -> None:
        self.postgres = postgres
        self.tenants = tmp_path / "tenants"
        self.tenants.mkdir()
        self.env = {
            **os.environ,
            "OSP_OPS_DATA_DIR": str(tmp_path / "data"),
            "OSP_OPS_TENANTS_DIR": str(self.tenants),
            "OSP_OPS_PLATFORM_DB_ADMIN_DSN": postgres.dsn,
            "OSP_OPS_FAKE_PLATFORM_JOURNAL": str(tmp_path / "platform.json"),
            "OSP_OPS_PLATFORM": "osp_ops.platforms.fake:journal_platform",
            "OSP_OPS_RETRY_BASE_DELAY": "0",
            "COLUMNS": "200",
        }
        self.kills: Counter[str] = Counter()

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "osp_ops.cli", *args]

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.argv(*args), env=self.env, capture_output=True, text=True,
                              timeout=300, check=False)  # fmt: skip

    def ok(self, *args: str) -> str:
        proc = self.run(*args)
        assert proc.returncode == 0, (args, proc.stdout[-2000:], proc.stderr[-2000:])
        return proc.stdout

    def killed_then_rerun(self, rng: random.Random, label: str, *args: str) -> str:
        """Start the command, SIGKILL it at a random moment, then run it again to its end."""
        proc = subprocess.Popen(self.argv(*args), env=self.env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
        time.sleep(rng.uniform(0.6, 3.5))  # imports take about a second: some kills miss
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # the CLI and what it started (pg_dump ...)
            self.kills[label] += 1
        proc.wait()
        return self.ok(*args)

    def spec(self, slug: str) -> None:
        spec = spec_data(slug, platform="kubernetes")
        (self.tenants / f"{slug}.yaml").write_text(yaml.safe_dump(spec))

    def database(self, slug: str, *, table: bool) -> None:
        """The tenant's role and database, as the kubernetes platform would make them."""
        dbs = TenantDatabases(self.postgres.dsn)
        try:
            dbs.ensure(slug, "pw-" + secrets.token_hex(8))
        finally:
            dbs.close()
        if table:
            dsn = with_database(self.postgres.dsn, db_name_for(slug))
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute("CREATE TABLE IF NOT EXISTS decidim_users (id serial PRIMARY KEY)")
                conn.execute("INSERT INTO decidim_users SELECT FROM generate_series(1, 25)")

    def check(self, slug: str, *, deleted: bool = False) -> None:
        ops = json.loads(self.ok("op", "list", "--tenant", slug, "--json", "--limit", "500"))
        stuck = [(o["kind"], o["id"], o["status"]) for o in ops
                 if o["status"] in ("running", "interrupted", "queued")]  # fmt: skip
        assert stuck == [], stuck
        tenant = json.loads(self.ok("tenant", "show", slug, "--json"))
        assert tenant["phase"] == ("deleted" if deleted else "ready"), tenant
        listed = json.loads(self.ok("backup", "list", slug, "--json"))["backups"]
        for b in listed:  # every backup listed as verified verifies
            if b["verified_at"]:
                self.ok("backup", "verify", slug, "--backup", b["backup_id"])
        if not deleted:
            retired = json.loads(self.ok("backup", "list-retired", slug, "--json"))["retired"]
            assert [n for n in retired if STAGED.search(n)] == [], retired


def test_random_kills_converge(tmp_path: Path, postgres: PostgresServer) -> None:
    world = World(tmp_path, postgres)
    rng = random.Random(SEED)
    for round_ in range(KILLS):
        slug = f"rk{round_}{secrets.token_hex(2)}"
        world.spec(slug)
        world.killed_then_rerun(rng, "create", "tenant", "create", slug)
        world.database(slug, table=True)
        world.check(slug)
        world.killed_then_rerun(rng, "apply", "tenant", "apply", slug)
        world.check(slug)
        world.killed_then_rerun(rng, "backup", "backup", "run", slug)
        world.check(slug)
        world.killed_then_rerun(rng, "restore", "backup", "restore", slug, "--yes")
        world.check(slug)
        clone = f"{slug}c"
        world.database(clone, table=False)
        world.killed_then_rerun(rng, "restore --to", "backup", "restore", slug, "--to", clone)
        world.check(clone)
        world.killed_then_rerun(rng, "drill", "backup", "drill", slug)
        world.check(slug)
        world.killed_then_rerun(rng, "delete", "tenant", "delete", slug, "--yes")
        world.check(slug, deleted=True)
    counts = ", ".join(f"{k}: {v}/{KILLS}" for k, v in sorted(world.kills.items()))
    print(f"random kills (seed {SEED}, kills that hit a running command): {counts}")
    assert sum(world.kills.values()) >= KILLS  # the kills did hit commands
