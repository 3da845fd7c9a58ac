"""Delete that can be undone until it is purged: `tenant delete` takes a final backup,
keeps every backup and the key that reads them, the tenant's TLS key leaves with it;
`backup restore --to` reads them until they expire; only `backup prune` after that
date destroys backups and key."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from osp_ops.backups import list_backups
from osp_ops.domain import deletion
from osp_ops.domain.phases import Phase
from osp_ops.engine import backup_access
from osp_ops.engine.api import request_converge
from osp_ops.engine.kinds import restore as restores
from osp_ops.engine.runner import run_operation
from osp_ops.platforms import tls
from tests.backups.test_damaged import _backup, _cli
from tests.backups.test_operations import (
    TABLES,
    _context,
    _count,
    _create,
    _run,
    _settings,
    _spec,
    _tenant_dsn,
)
from tests.fixtures.postgres import PostgresServer

pytestmark = pytest.mark.integration


def test_delete_keeps_backups_readable_until_they_expire(
    tmp_path: Path, postgres: PostgresServer
) -> None:
    slug = f"x{secrets.token_hex(3)}"
    settings = _settings(tmp_path, postgres)
    ctx = _context(settings)
    spec = _spec(slug)
    _create(ctx, postgres, spec, rows=37)
    first = _backup(ctx, spec)
    tls.issue_cert(settings, slug=slug, hostnames=[spec.hosts.primary])
    certs = settings.data_dir / "ca" / "certs"
    assert (certs / f"{slug}.key").exists()

    asked = _cli(settings, "tenant", "delete", slug)  # no answer: nothing happens
    assert asked.returncode == 1
    text = " ".join(asked.stdout.split())
    assert "A final backup is taken first." in text, text
    assert "Its backups and their key are kept until " in text
    assert f"`osp-ops backup restore {slug} --to NEW` restores any of them" in text
    assert "after that `osp-ops backup prune` destroys the backups and the key" in text
    no_reason = _cli(settings, "tenant", "delete", slug, "--yes", "--no-final-backup")
    assert no_reason.returncode == 2, no_reason.stderr
    assert "--reason" in no_reason.stderr
    assert ctx.tenants.require(slug).phase is Phase.ready

    done = _cli(settings, "tenant", "delete", slug, "--yes")
    assert done.returncode == 0, done.stderr
    rec = ctx.tenants.require(slug)
    assert rec.phase is Phase.deleted
    expires = deletion.parse_expiry(rec.reason)
    assert expires is not None
    assert abs(expires - (datetime.now(UTC) + timedelta(days=90))) < timedelta(minutes=5)
    assert ctx.secrets.names(slug) == [backup_access.IDENTITY_SECRET]  # app secrets gone, key kept
    assert not (certs / f"{slug}.key").exists() and not (certs / f"{slug}.crt").exists()
    infos = list_backups(
        backup_access.store_for(ctx), slug, mac_key=backup_access.known_mac_key(ctx, slug)
    )
    assert [i.state for i in infos] == ["complete", "complete"]  # the final backup too
    assert infos[0].backup_id == first
    final = infos[1].backup_id

    verified = _cli(settings, "backup", "verify", slug)
    assert verified.returncode == 0, verified.stderr
    in_place = _cli(settings, "backup", "restore", slug, "--yes")
    assert in_place.returncode == 4, in_place.stderr
    assert f"--to NEW` restores its backups into a new tenant until {expires:%Y-%m-%d}" in (
        " ".join(in_place.stderr.split())
    )

    # The clone of the deleted tenant gets the final backup's data.
    clone = _spec(f"{slug}c")
    _create(ctx, postgres, clone, rows=1)
    params = restores.restore_params(ctx, clone, final, datetime.now(UTC), source_tenant=slug)
    _run(ctx, "restore", clone, **params)
    clone_dsn = _tenant_dsn(postgres, clone.slug, ctx.secrets.get(clone.slug, "db_password"))
    assert [_count(clone_dsn, t) for t in TABLES] == [37, 37, 37]

    kept = _cli(settings, "backup", "prune", slug)
    assert kept.returncode == 0, kept.stderr
    assert "2 backups and their key kept until" in kept.stdout
    assert len(list_backups(backup_access.store_for(ctx), slug)) == 2

    # Once the date has passed, the scheduled prune destroys backups and key.
    past = datetime.now(UTC) - timedelta(minutes=1)
    ctx.tenants.set_phase(slug, Phase.deleted, deletion.deleted_reason(past))
    purged = _cli(settings, "backup", "prune", "--all")
    assert purged.returncode == 0, purged.stderr
    assert list_backups(backup_access.store_for(ctx), slug) == []
    assert ctx.secrets.names(slug) == []
    assert deletion.is_purged(ctx.tenants.require(slug).reason)
    actions = [e.action for e in ctx.audit.entries(tenant=slug)]
    assert actions.count("backup.purged") == 2 and "tenant.purged" in actions
    assert (
        len(list_backups(backup_access.store_for(ctx), clone.slug)) == 0
    )  # the clone: retention only
    assert _cli(settings, "backup", "prune", slug).returncode == 0  # nothing left, no error


def test_delete_without_final_backup_is_audited(tmp_path: Path, postgres: PostgresServer) -> None:
    slug = f"y{secrets.token_hex(3)}"
    settings = _settings(tmp_path, postgres)
    ctx = _context(settings)
    spec = _spec(slug)
    _create(ctx, postgres, spec)
    done = _cli(
        settings, "tenant", "delete", slug, "--yes", "--no-final-backup", "--reason", "test city"
    )
    assert done.returncode == 0, done.stderr
    assert list_backups(backup_access.store_for(ctx), slug) == []
    [entry] = [e for e in ctx.audit.entries(tenant=slug) if "without-final" in e.action]
    assert entry.details["reason"] == "test city"
    again = _cli(settings, "tenant", "delete", slug, "--yes")  # the same command, rerun
    assert again.returncode == 0, again.stderr
    assert f"{slug} is deleted already: backups kept until" in again.stdout


def test_a_failed_final_backup_deletes_nothing(tmp_path: Path, postgres: PostgresServer) -> None:
    slug = f"z{secrets.token_hex(3)}"
    settings = _settings(tmp_path, postgres)
    ctx = _context(settings)
    spec = _spec(slug)
    ctx.specs.write(spec)
    op, _ = request_converge(ctx, spec)  # the fake app runs, but it has no database
    run_operation(ctx, op.id)
    failed = _cli(settings, "tenant", "delete", slug, "--yes")
    assert failed.returncode != 0
    assert "Hint: `osp-ops tenant delete SLUG --no-final-backup --reason TEXT`" in failed.stderr
    rec = ctx.tenants.require(slug)
    assert rec.phase is Phase.ready, rec
    assert "db_password" in ctx.secrets.names(slug)
