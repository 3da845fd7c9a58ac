"""Automatic rollback of upgrades: a step after the backup gate that fails puts the
tenant back on its previous version, with the gate's backup restored into a new
database; the database the failed upgrade touched is kept (retired). Engine, the fake
app platform (its failure knobs), the tenant's database real (the PostgreSQL fixture
as the shared server of Kubernetes-style tenants). The kills: tests/engine/
test_upgrade_rollback_kills.py.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pydantic import SecretStr

from osp_ops.domain.errors import (
    IllegalTransitionError,
    OspOpsError,
    PlatformError,
    RolledBackError,
)
from osp_ops.domain.names import db_name_for
from osp_ops.domain.phases import Phase
from osp_ops.domain.spec import TenantSpec
from osp_ops.engine.api import request_converge
from osp_ops.engine.context import Context
from osp_ops.engine.kinds import restore as restores
from osp_ops.engine.kinds.rollback import ROLLBACK_STEPS, recoverable
from osp_ops.engine.registry import StepOutput
from osp_ops.engine.runner import run_operation
from osp_ops.engine.steps import StepContext
from osp_ops.engine.upgrade_tasks import task_name
from osp_ops.platforms.base import Health, Reporter, TaskResult
from osp_ops.platforms.data import with_database
from osp_ops.platforms.fake import FakePlatform
from osp_ops.platforms.pgtenant import TenantDatabases
from osp_ops.store.operations import OperationInfo
from osp_ops.store.task_runs import TaskRuns
from tests.factories import fake_context, make_spec
from tests.fixtures.postgres import PostgresServer

pytestmark = pytest.mark.integration

NEW = "0.28.4"


class MigratingFake(FakePlatform):
    """The fake app platform, whose migrations of ``NEW`` change the tenant's database
    (a column and its values) before they end as ``fail_tasks`` says: what a failed
    upgrade leaves behind for the rollback to put right. Its health check, too, raises
    what ``fail["health"]`` holds first."""

    def __init__(self, admin_dsn: str) -> None:
        super().__init__()
        self.admin_dsn = admin_dsn

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
        if task == "migrate" and version == NEW:
            with psycopg.connect(_dsn(self.admin_dsn, spec.slug), autocommit=True) as conn:
                conn.execute("ALTER TABLE decidim_users ADD COLUMN IF NOT EXISTS upgraded text")
                conn.execute("UPDATE decidim_users SET upgraded = %s", (version,))
        return super().run_task(
            spec=spec, version=version, task=task, secrets=secrets, reporter=reporter,
            command=command,
        )  # fmt: skip

    def health(self, *, spec: TenantSpec) -> Health:
        errors = self.fail.get("health")
        if errors:
            raise errors.pop(0)
        return super().health(spec=spec)


def _dsn(admin_dsn: str, slug: str, database: str | None = None) -> str:
    return with_database(admin_dsn, database or db_name_for(slug))


class Tenant:
    """One Decidim tenant at 0.27.7 with 25 users in its real database."""

    def __init__(self, tmp_path: Path, postgres: PostgresServer, **settings: Any) -> None:
        self.slug = f"rb{secrets.token_hex(3)}"
        self.postgres = postgres
        self.fake = MigratingFake(postgres.dsn)
        self.ctx: Context = fake_context(
            tmp_path, platform=self.fake, platform_db_admin_dsn=SecretStr(postgres.dsn),
            **settings,
        )  # fmt: skip
        self.run(self.spec("0.27.7"))
        dbs = TenantDatabases(postgres.dsn)
        try:
            dbs.ensure(self.slug, self.ctx.secrets.get(self.slug, "db_password"))
        finally:
            dbs.close()
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute("CREATE TABLE decidim_users (id serial PRIMARY KEY, name text)")
            conn.execute(
                "INSERT INTO decidim_users (name) SELECT 'u' || g FROM generate_series(1, 25) g"
            )

    def spec(self, version: str) -> TenantSpec:
        return make_spec(self.slug, version=version, platform="kubernetes")

    def dsn(self, database: str | None = None) -> str:
        return _dsn(self.postgres.dsn, self.slug, database)

    def request(self, version: str) -> OperationInfo:
        spec = self.spec(version)
        self.ctx.specs.write(spec)
        op, _ = request_converge(self.ctx, spec)
        return op

    def run(self, spec: TenantSpec) -> OperationInfo:
        self.ctx.specs.write(spec)
        op, _ = request_converge(self.ctx, spec)
        return run_operation(self.ctx, op.id)

    def columns(self, database: str | None = None) -> list[str]:
        with psycopg.connect(self.dsn(database)) as conn:
            rows = conn.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_name = 'decidim_users' ORDER BY ordinal_position"
            ).fetchall()
        return [r[0] for r in rows]

    def users(self, database: str | None = None) -> int:
        with psycopg.connect(self.dsn(database)) as conn:
            row = conn.execute("SELECT count(*) FROM decidim_users").fetchone()
        assert row is not None
        return int(row[0])

    def retired(self) -> list[str]:
        return restores.retired_databases(self.ctx, self.spec("0.27.7"))

    def audit(self) -> list[str]:
        return [e.action for e in self.ctx.audit.entries(tenant=self.slug)]


@pytest.fixture
def tenant(tmp_path: Path, postgres: PostgresServer) -> Tenant:
    return Tenant(tmp_path, postgres)


def _upgrade_rolls_back(t: Tenant, failed: str, match: str) -> OperationInfo:
    """Run the upgrade to NEW, which must roll back after ``failed``; check the tenant
    is as it was, with its data, and the record says why. Returns the operation."""
    op = t.request(NEW)
    with pytest.raises(RolledBackError, match=match) as exc:
        run_operation(t.ctx, op.id)
    assert exc.value.exit_code == 8
    done = t.ctx.operations.get(op.id)
    assert done.status == "rolled-back" and done.error and failed in done.error
    steps = {s.name: s for s in done.steps}
    assert steps[failed].status == "failed" and steps[failed].error
    names = [s.name for s in done.steps]
    assert names[-len(ROLLBACK_STEPS) :] == list(ROLLBACK_STEPS)
    assert {steps[n].status for n in ROLLBACK_STEPS} == {"done"}
    after = names[names.index(failed) + 1 : -len(ROLLBACK_STEPS)]
    assert {steps[n].status for n in after} <= {"skipped"}
    assert "mark-ready" in after
    begin = steps["begin-rollback"].data
    assert begin is not None and begin["failed_step"] == failed and begin["from"] == "0.27.7"
    backup = steps["backup-before-upgrade"].data
    assert backup is not None and begin["backup_id"] == backup["backup_id"]
    # The tenant runs its old version again, ready, with the data of the gate's backup.
    rec = t.ctx.tenants.require(t.slug)
    assert (rec.phase, rec.observed_version) == (Phase.ready, "0.27.7")
    assert rec.reason and "rolled back to 0.27.7" in rec.reason and failed in rec.reason
    assert t.fake.world[t.slug] == {"provisioned": "yes", "version": "0.27.7", "running": "yes"}
    assert t.users() == 25
    assert "upgraded" not in t.columns()
    # What the failed upgrade touched is kept, retired as a restore retires it.
    retired = t.retired()
    assert retired == [begin["retired_database"]], retired
    assert re.fullmatch(rf"{db_name_for(t.slug)}_old_\d{{14}}", retired[0])
    assert t.users(retired[0]) == 25
    actions = t.audit()
    for action in (
        "upgrade.undo",
        "upgrade.rolling-back",
        "backup.restored",
        "upgrade.rolled-back",
    ):
        assert action in actions, actions
    return done


def test_a_failed_migration_rolls_back_to_the_old_version_and_data(tenant: Tenant) -> None:
    tenant.fake.fail_tasks.append("migrate")
    _upgrade_rolls_back(tenant, f"migrate@{NEW}", "migrate failed")
    # The retired database is the one the migration changed.
    assert "upgraded" in tenant.columns(tenant.retired()[0])


def test_a_failed_one_time_task_rolls_back(tenant: Tenant) -> None:
    tenant.fake.fail_tasks.append(task_name(NEW, 3))
    _upgrade_rolls_back(tenant, f"upgrade-tasks@{NEW}", "initialize_default_content_blocks")
    runs = sorted(TaskRuns(tenant.ctx.db).for_tenant(tenant.slug), key=lambda r: r.id)
    assert [r.status for r in runs] == ["succeeded", "succeeded", "failed"]
    assert "upgraded" in tenant.columns(tenant.retired()[0])  # its migration had run


def test_a_failed_health_check_after_deploy_rolls_back(tenant: Tenant) -> None:
    tenant.fake.fail["health"] = [PlatformError("HTTP 500 on /")]
    _upgrade_rolls_back(tenant, f"check-health@{NEW}", "HTTP 500")


def test_a_failed_gate_touches_nothing_and_does_not_roll_back(
    tmp_path: Path, postgres: PostgresServer
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("the backup store cannot be made under a file\n")
    t = Tenant(tmp_path, postgres, backup_url=f"file://{blocker / 'backups'}")
    calls = len(t.fake.calls)
    op = t.request(NEW)
    with pytest.raises(OspOpsError) as exc:
        run_operation(t.ctx, op.id)
    assert not isinstance(exc.value, RolledBackError)
    done = t.ctx.operations.get(op.id)
    assert done.status == "failed"
    assert [s.status for s in done.steps if s.name == "backup-before-upgrade"] == ["failed"]
    assert not [s for s in done.steps if s.name in ROLLBACK_STEPS]
    assert {s.status for s in done.steps[1:]} == {"pending"}
    assert t.fake.calls[calls:] == []  # no deploy, no migration, no maintenance page
    rec = t.ctx.tenants.require(t.slug)
    assert (rec.phase, rec.observed_version) == (Phase.ready, "0.27.7")
    assert t.retired() == [] and t.users() == 25
    with pytest.raises(IllegalTransitionError, match="nothing to recover"):
        recoverable(t.ctx, t.slug, interrupted=False)


def test_a_failed_rollback_leaves_the_tenant_failed_until_recover(tenant: Tenant) -> None:
    tenant.fake.fail_tasks.append("migrate")
    tenant.fake.fail["resume"] = [PlatformError("supervisor refused to start the app")]
    op = tenant.request(NEW)
    with pytest.raises(OspOpsError, match="its rollback failed too, at rollback-start-app") as exc:
        run_operation(tenant.ctx, op.id)
    assert "upgrade recover" in (exc.value.hint or "")
    done = tenant.ctx.operations.get(op.id)
    assert done.status == "failed"
    steps = {s.name: s.status for s in done.steps}
    assert (steps[f"migrate@{NEW}"], steps["rollback-start-app"]) == ("failed", "failed")
    rec = tenant.ctx.tenants.require(tenant.slug)
    assert rec.phase is Phase.failed and "rollback failed" in (rec.reason or "")
    # The maintenance page stays up: the app is stopped, on its old version already.
    assert tenant.fake.world[tenant.slug]["running"] == "no"
    # No new upgrade goes on top of it; `upgrade recover` retries the rollback.
    with pytest.raises(IllegalTransitionError, match="so did its rollback") as refused:
        tenant.request(NEW)
    assert f"osp-ops upgrade recover {tenant.slug}" in (refused.value.hint or "")
    again = recoverable(tenant.ctx, tenant.slug, interrupted=False)
    assert again.id == op.id and again.status == "queued"
    calls = len(tenant.fake.calls)
    with pytest.raises(RolledBackError):
        run_operation(tenant.ctx, op.id)
    # Only what was left of the rollback ran; the failed migration stays failed.
    assert [c[0] for c in tenant.fake.calls[calls:]] == ["resume"]
    done = tenant.ctx.operations.get(op.id)
    assert done.status == "rolled-back"
    assert {s.name: s.status for s in done.steps}[f"migrate@{NEW}"] == "failed"
    rec = tenant.ctx.tenants.require(tenant.slug)
    assert (rec.phase, rec.observed_version) == (Phase.ready, "0.27.7")
    assert tenant.users() == 25 and "upgraded" not in tenant.columns()
    with pytest.raises(IllegalTransitionError, match="rolled back already"):
        recoverable(tenant.ctx, tenant.slug, interrupted=False)
    # A new upgrade is a new attempt, with its own gate; this one succeeds.
    assert run_operation(tenant.ctx, tenant.request(NEW).id).status == "succeeded"
    assert tenant.ctx.tenants.require(tenant.slug).observed_version == NEW


def test_a_rollback_whose_staged_copy_was_dropped_restores_it_again(tenant: Tenant) -> None:
    """A rollback that failed before its switch waits for `upgrade recover`; when what
    it staged is dropped meanwhile (`backup restore --confirm-drop`, or prune), the
    recover restores the backup again rather than switch to nothing."""
    switch = tenant.ctx.kinds.step("rollback-switch-database")

    def refused(sc: StepContext) -> StepOutput:
        raise PlatformError("the database server refused the rename")

    tenant.ctx.kinds.register(None, {"rollback-switch-database": refused})
    tenant.fake.fail_tasks.append("migrate")
    op = tenant.request(NEW)
    with pytest.raises(OspOpsError, match="at rollback-switch-database"):
        run_operation(tenant.ctx, op.id)
    staged = [n for n in tenant.retired() if re.search(r"_r\d{14}$", n)]
    assert len(staged) == 1, staged
    assert restores.drop_retired(tenant.ctx, tenant.spec("0.27.7")) == staged
    tenant.ctx.kinds.register(None, {"rollback-switch-database": switch})
    recoverable(tenant.ctx, tenant.slug, interrupted=False)
    with pytest.raises(RolledBackError):
        run_operation(tenant.ctx, op.id)
    step = next(
        s for s in tenant.ctx.operations.get(op.id).steps if s.name == "rollback-switch-database"
    )
    assert step.output and step.output.startswith("restored "), step.output
    rec = tenant.ctx.tenants.require(tenant.slug)
    assert (rec.phase, rec.observed_version) == (Phase.ready, "0.27.7")
    assert tenant.users() == 25 and "upgraded" not in tenant.columns()
    assert [n for n in tenant.retired() if "_old_" in n]  # the touched one is kept
