"""Secrets and backups agree: after `secrets rotate`, a restore of an older backup gives
the admin the current password of `tenant credentials`, and the health check includes
the admin login (an instance that refuses it is not healthy).

Real PostgreSQL for the tenant's data; the app part is the fake platform, whose admin
password lives in the tenant's database (as an app's does), so a restore brings back
the password the backup holds. The hosts platform's case with OpenSlides (drill too):
tests/hosts/test_hosts_cli.py.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pydantic import SecretStr

from osp_ops.domain.errors import PlatformError
from osp_ops.domain.names import db_name_for
from osp_ops.domain.spec import TenantSpec
from osp_ops.engine.api import request
from osp_ops.engine.context import Context
from osp_ops.engine.health import ADMIN_CHECK, tenant_health
from osp_ops.engine.kinds import restore as restores
from osp_ops.engine.kinds import rotation
from osp_ops.engine.runner import run_operation
from osp_ops.platforms.base import Change, Reporter, TaskResult
from osp_ops.platforms.fake import FakePlatform
from osp_ops.platforms.pgtenant import TenantDatabases
from tests.factories import converge, fake_context, make_spec
from tests.fixtures.postgres import PostgresServer

pytestmark = pytest.mark.integration


@dataclass
class AdminInDatabase(FakePlatform):
    """The fake app, its admin password kept in the tenant's database (table
    ``fake_admin``): bootstrap-admin writes it, the login check reads it."""

    dsn: str = ""

    def _db(self, slug: str) -> psycopg.Connection[Any]:
        return psycopg.connect(self.dsn, dbname=db_name_for(slug), autocommit=True)

    def provision(
        self,
        *,
        spec: TenantSpec,
        secrets: Mapping[str, str],
        reporter: Reporter,
        tenant_id: str | None = None,
    ) -> Change:
        """The fake's provision, and the tenant's database on the real server."""
        dbs = TenantDatabases(self.dsn)
        try:
            dbs.ensure(spec.slug, secrets["db_password"])
        finally:
            dbs.close()
        return super().provision(spec=spec, secrets=secrets, reporter=reporter)

    def run_task(
        self,
        *,
        spec: TenantSpec,
        version: str,
        task: str,
        secrets: Mapping[str, str],
        reporter: Reporter,
        command: Sequence[str] | None = None,
    ) -> TaskResult:
        """bootstrap-admin gives the admin ``secrets``' password in the database."""
        if task == "bootstrap-admin":
            self.set_admin(spec.slug, secrets["admin_password"])
        return super().run_task(
            spec=spec, version=version, task=task, secrets=secrets, reporter=reporter
        )

    def set_admin(self, slug: str, password: str) -> None:
        """What an admin changing its own password in the app does."""
        with self._db(slug) as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS fake_admin (password text NOT NULL)")
            conn.execute("DELETE FROM fake_admin")
            conn.execute("INSERT INTO fake_admin VALUES (%s)", (password,))

    def admin_password(self, slug: str) -> str | None:
        """The admin's password in the live database."""
        with self._db(slug) as conn:
            row = conn.execute("SELECT password FROM fake_admin").fetchone()
        return None if row is None else str(row[0])

    def admin_login(self, *, spec: TenantSpec, password: str) -> str | None:
        """Capability AdminLogin: ``ok`` when the database's password is ``password``."""
        return "ok" if self.admin_password(spec.slug) == password else "admin refused"


def _context(tmp_path: Path, postgres: PostgresServer) -> tuple[Context, AdminInDatabase]:
    app = AdminInDatabase(dsn=postgres.dsn)
    ctx = fake_context(tmp_path, platform=app, platform_db_admin_dsn=SecretStr(postgres.dsn))
    return ctx, app


def _run(ctx: Context, kind: str, spec: TenantSpec, **params: Any) -> str:
    op, _ = request(ctx, kind, spec, params=params)
    done = run_operation(ctx, op.id)
    assert done.status == "succeeded", done.error
    return str(done.steps[-1].output)


def _tenant(
    tmp_path: Path, postgres: PostgresServer
) -> tuple[Context, AdminInDatabase, TenantSpec]:
    ctx, app = _context(tmp_path, postgres)
    spec = make_spec(f"s{secrets.token_hex(3)}", platform="kubernetes")
    assert converge(ctx, spec).status == "succeeded"
    return ctx, app, spec


def test_restore_of_a_backup_from_before_a_rotation_sets_the_current_admin_password(
    tmp_path: Path, postgres: PostgresServer
) -> None:
    ctx, app, spec = _tenant(tmp_path, postgres)
    slug = spec.slug
    old = ctx.secrets.get(slug, "admin_password")
    assert app.admin_password(slug) == old
    _run(ctx, "backup", spec)
    backup_id = restores.find_backup(ctx, slug, None).backup_id

    _run(ctx, rotation.KIND, spec, names=["admin_password"])
    new = ctx.secrets.get(slug, "admin_password")
    assert new != old and app.admin_password(slug) == new

    params = restores.restore_params(ctx, spec, backup_id, datetime.now(UTC))
    op, _ = request(ctx, "restore", spec, params=params)
    done = run_operation(ctx, op.id)
    assert done.status == "succeeded", done.error
    # The backup held the old password; the restored admin has the current one.
    assert app.admin_password(slug) == new
    [step] = [s for s in done.steps if s.name == "reset-admin"]
    assert "current" in str(step.output)
    health = tenant_health(ctx, spec)
    assert health.ok and health.checks[ADMIN_CHECK] == "ok", health


def test_health_checks_the_admin_login(tmp_path: Path, postgres: PostgresServer) -> None:
    ctx, app, spec = _tenant(tmp_path, postgres)
    assert tenant_health(ctx, spec).checks[ADMIN_CHECK] == "ok"

    app.set_admin(spec.slug, "changed behind osp-ops' back")
    health = tenant_health(ctx, spec)
    assert not health.ok and health.checks[ADMIN_CHECK] == "admin refused", health
    # The operations' health check fails too: an apply does not end ready.
    op, _ = request(ctx, "apply", spec, params={"health_timeout": 0})
    with pytest.raises(PlatformError, match="admin login: admin refused"):
        run_operation(ctx, op.id)
    assert ctx.operations.get(op.id).status == "failed"

    # A restore (here of the latest backup) sets the admin to the credentials again.
    _run(ctx, "backup", spec)
    backup_id = restores.find_backup(ctx, spec.slug, None).backup_id
    _run(ctx, "restore", spec, **restores.restore_params(ctx, spec, backup_id, datetime.now(UTC)))
    assert app.admin_password(spec.slug) == ctx.secrets.get(spec.slug, "admin_password")
    assert tenant_health(ctx, spec).ok
