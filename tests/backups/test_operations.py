"""Backup operations through the engine: real PostgreSQL for the data, a fake app platform.

The tenants are Kubernetes-style: their database on the shared server of
``platform_db_admin_dsn`` (the ``postgres`` fixture). The app part (deploy, migrate,
health) is ``FakePlatform``: no cluster is needed.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pydantic import SecretStr

from osp_ops.backups import list_backups, open_store
from osp_ops.domain.names import db_name_for
from osp_ops.domain.spec import TenantSpec
from osp_ops.engine import backup_access
from osp_ops.engine.api import request, request_converge
from osp_ops.engine.context import Context, build_context
from osp_ops.engine.kinds import restore as restores
from osp_ops.engine.runner import run_operation
from osp_ops.platforms.data import SharedServerAccess, with_database
from osp_ops.platforms.fake import FakePlatform
from osp_ops.platforms.pgtenant import TenantDatabases
from osp_ops.settings import Settings
from osp_ops.store.backups import Backups
from tests.factories import make_spec
from tests.fixtures.minio import MinioServer
from tests.fixtures.postgres import PostgresServer

pytestmark = pytest.mark.integration

TABLES = ("decidim_users", "decidim_proposals_proposals", "decidim_comments_comments")


def _spec(slug: str, version: str = "0.27.7") -> TenantSpec:
    return make_spec(slug, version=version, platform="kubernetes")


def _settings(tmp_path: Path, postgres: PostgresServer, **extra: Any) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        tenants_dir=tmp_path / "tenants",
        retry_base_delay=0,
        platform_db_admin_dsn=SecretStr(postgres.dsn),
        **extra,
    )


def _context(settings: Settings) -> Context:
    # The app part is the fake; the tenant's database is real (settings' admin DSN).
    fake_app_platform = FakePlatform()
    return build_context(settings, actor="test", platform_factory=lambda _s: fake_app_platform)


def _tenant_dsn(postgres: PostgresServer, slug: str, password: str) -> str:
    return postgres.dsn_for(db_name_for(slug), user=db_name_for(slug), password=password)


def _create(ctx: Context, postgres: PostgresServer, spec: TenantSpec, rows: int = 50) -> str:
    ctx.specs.write(spec)
    op, _ = request_converge(ctx, spec)
    run_operation(ctx, op.id)
    password = ctx.secrets.get(spec.slug, "db_password")
    dbs = TenantDatabases(postgres.dsn)
    try:
        dbs.ensure(spec.slug, password)
    finally:
        dbs.close()
    dsn = _tenant_dsn(postgres, spec.slug, password)
    with psycopg.connect(dsn, autocommit=True) as conn:
        for t in TABLES:
            conn.execute(f"CREATE TABLE {t} (id serial PRIMARY KEY, body text)")
            conn.execute(
                f"INSERT INTO {t} (body) SELECT 'row ' || g FROM generate_series(1, %s) g",
                (rows,),
            )
    return dsn


def _run(ctx: Context, kind: str, spec: TenantSpec, **params: Any) -> str:
    op, _ = request(ctx, kind, spec, params=params)
    done = run_operation(ctx, op.id)
    assert done.status == "succeeded", done.error
    return str(done.steps[-1].output)


def _count(dsn: str, table: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
        assert row is not None
        return int(row[0])


def test_backup_list_verify_drill_restore_prune(tmp_path: Path, postgres: PostgresServer) -> None:
    slug = f"b{secrets.token_hex(3)}"
    settings = _settings(tmp_path, postgres)
    ctx = _context(settings)
    spec = _spec(slug)
    dsn = _create(ctx, postgres, spec)

    out = _run(ctx, "backup", spec)
    assert out.startswith("verified ")
    store = open_store(settings.effective_backup_url, settings)
    infos = list_backups(store, slug, mac_key=backup_access.known_mac_key(ctx, slug))
    assert [i.state for i in infos] == ["complete"]
    manifest = infos[0].manifest
    assert manifest is not None
    assert manifest.body.row_counts == {t: 50 for t in TABLES}
    assert (manifest.body.postgres_version or "").startswith("15")
    assert "pg_dump (PostgreSQL) 15" in (manifest.body.pg_dump_version or "")
    assert ctx.audit.entries(tenant=slug)
    cached = Backups(ctx.db).for_tenant(slug)
    assert [b.id for b in cached] == [infos[0].backup_id] and cached[0].verified_at

    # A fresh state DB: the object store still lists the backup.
    fresh = _context(
        _settings(tmp_path / "fresh", postgres, backup_url=settings.effective_backup_url)
    )
    assert [
        i.backup_id
        for i in list_backups(open_store(fresh.settings.effective_backup_url, fresh.settings), slug)
    ] == [infos[0].backup_id]

    # Drill: restore into a scratch DB, row counts match, RTO recorded, scratch dropped.
    out = _run(ctx, "drill", spec)
    assert out.startswith("drill ok")
    drills = Backups(ctx.db).drills(slug)
    assert drills[-1].result == "ok" and drills[-1].rto_seconds is not None
    admin = SharedServerAccess(postgres.dsn).database_admin(spec)
    assert admin.list(f"{db_name_for(slug)}_drill%") == []

    # Data written after the backup is gone after a restore; the old DB is retired.
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO decidim_users (body) VALUES ('after backup')")
    assert _count(dsn, "decidim_users") == 51
    params = restores.restore_params(ctx, spec, infos[0].backup_id, datetime.now(UTC))
    retired = params["retired_database"]
    op, _ = request(ctx, "restore", spec, params=params)
    done = run_operation(ctx, op.id)
    assert done.status == "succeeded", done.error
    outputs = {s.name: s.output or "" for s in done.steps}
    assert retired in outputs["switch-database"]
    # The app was stopped while the database was switched, then started again.
    assert outputs["stop-app"].startswith("app stopped")
    assert outputs["start-app"] == "app started"
    assert outputs["restore-files"].startswith("no files")  # uploads live in object storage
    assert _count(dsn, "decidim_users") == 50  # the tenant's own URL, now the restored DB
    assert restores.retired_databases(ctx, spec) == [retired]
    assert _count(with_database(postgres.dsn, retired), "decidim_users") == 51
    assert restores.drop_retired(ctx, spec) == [retired]
    assert restores.retired_databases(ctx, spec) == []

    # Prune: with daily=1 and nothing else, only the newest (verified) backup stays.
    _run(ctx, "backup", spec)
    before = list_backups(store, slug)
    assert len(before) == 2
    one = spec.model_copy(
        update={
            "backup": spec.backup.model_copy(
                update={
                    "retention": spec.backup.retention.model_copy(
                        update={"daily": 1, "weekly": 0, "monthly": 0, "yearly": 0}
                    )
                }
            )
        }
    )
    _run(ctx, "prune", one)
    after = list_backups(store, slug)
    assert [i.backup_id for i in after] == [before[-1].backup_id]
    pruned = [e for e in ctx.audit.entries(tenant=slug) if e.action == "backup.pruned"]
    assert [e.details["backup"] for e in pruned] == [before[0].backup_id]


def test_upgrade_takes_a_backup_first(tmp_path: Path, postgres: PostgresServer) -> None:
    slug = f"u{secrets.token_hex(3)}"
    ctx = _context(_settings(tmp_path, postgres))
    _create(ctx, postgres, _spec(slug, "0.27.7"))
    newer = _spec(slug, "0.28.4")
    ctx.specs.write(newer)
    op, _ = request_converge(ctx, newer)
    assert op.kind == "upgrade"
    done = run_operation(ctx, op.id)
    step = next(s for s in done.steps if s.name == "backup-before-upgrade")
    assert step.status == "done" and step.output and step.output.startswith("backup ")
    backup_id = step.output.split()[1]
    assert Backups(ctx.db).for_tenant(slug)[0].id == backup_id


def test_backup_to_s3(
    tmp_path: Path, postgres: PostgresServer, s3: MinioServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    slug = f"s{secrets.token_hex(3)}"
    settings = _settings(
        tmp_path,
        postgres,
        backup_url=f"s3://{s3.bucket}/ops-{slug}",
        s3_endpoint_url=s3.endpoint_url,
    )
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3.secret_key)
    ctx = _context(settings)
    spec = _spec(slug)
    _create(ctx, postgres, spec, rows=5)
    _run(ctx, "backup", spec)
    assert _run(ctx, "drill", spec).startswith("drill ok")
    assert datetime.now(UTC) - Backups(ctx.db).drills(slug)[0].started_at.replace(
        tzinfo=UTC
    ) < timedelta(hours=1)


def test_row_counts_and_dump_share_one_snapshot(
    tmp_path: Path, postgres: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows the app writes once the backup has begun are in neither the dump nor the counts."""
    slug = f"n{secrets.token_hex(3)}"
    ctx = _context(_settings(tmp_path, postgres))
    spec = _spec(slug)
    dsn = _create(ctx, postgres, spec, rows=5)
    dump_command = SharedServerAccess.dump_command

    def busy_app_then_dump(self: SharedServerAccess, *args: Any, **kw: Any) -> Any:
        with psycopg.connect(dsn, autocommit=True) as conn:  # committed before pg_dump starts
            conn.execute("INSERT INTO decidim_users (body) VALUES ('during'), ('the backup')")
        return dump_command(self, *args, **kw)

    monkeypatch.setattr(SharedServerAccess, "dump_command", busy_app_then_dump)
    _run(ctx, "backup", spec)
    monkeypatch.undo()
    store = open_store(ctx.settings.effective_backup_url, ctx.settings)
    manifest = list_backups(store, slug, mac_key=backup_access.known_mac_key(ctx, slug))[
        -1
    ].manifest
    assert manifest is not None and manifest.body.row_counts["decidim_users"] == 5
    assert _count(dsn, "decidim_users") == 7
    # The drill restores exactly what the counts say.
    assert _run(ctx, "drill", spec).startswith("drill ok")
