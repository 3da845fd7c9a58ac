"""A lost manifest never deletes a backup; every verify records its result.

Real PostgreSQL for the tenant's data, a fake app platform, the local store; `verify`,
`list` and `repair` through the CLI as an operator runs them.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from osp_ops.backups import backup_prefix, list_backups
from osp_ops.domain.errors import BackupError
from osp_ops.domain.spec import TenantSpec, validate_spec
from osp_ops.engine import backup_access
from osp_ops.engine.api import request
from osp_ops.engine.runner import run_operation
from osp_ops.settings import Settings
from osp_ops.store.backups import Backups
from tests.backups.test_operations import _context, _create, _run, _settings, _spec
from tests.fixtures.minio import MinioServer
from tests.fixtures.postgres import PostgresServer

pytestmark = pytest.mark.integration


@pytest.fixture
def fixtures(request: pytest.FixtureRequest) -> pytest.FixtureRequest:
    """Pytest's ``request`` (that name is the engine's ``request`` here)."""
    return request


def _cli(settings: Settings, *argv: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OSP_OPS_")}
    assert settings.platform_db_admin_dsn is not None
    env |= {
        "OSP_OPS_DATA_DIR": str(settings.data_dir),
        "OSP_OPS_TENANTS_DIR": str(settings.tenants_dir),
        "OSP_OPS_PLATFORM_DB_ADMIN_DSN": settings.platform_db_admin_dsn.get_secret_value(),
        "OSP_OPS_RETRY_BASE_DELAY": "0",
        "OSP_OPS_FAKE_PLATFORM_JOURNAL": str(settings.data_dir.parent / "fake.json"),
        "OSP_OPS_PLATFORM": "osp_ops.platforms.fake:journal_platform",
        "COLUMNS": "250",
    }
    if settings.backup_url:  # S3 (the credentials are in the AWS_* variables)
        env |= {"OSP_OPS_BACKUP_URL": settings.backup_url,
                "OSP_OPS_S3_ENDPOINT_URL": str(settings.s3_endpoint_url)}  # fmt: skip
    return subprocess.run(
        [sys.executable, "-m", "osp_ops.cli", *argv],
        env=env, input=stdin, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def _dir(settings: Settings, slug: str, backup_id: str) -> Path:
    return settings.data_dir / "backups" / backup_prefix(slug, backup_id)


def _backup(ctx: object, spec: TenantSpec) -> str:
    out = _run(ctx, "backup", spec)  # type: ignore[arg-type]
    return out.split()[1].split("/")[1].rstrip(":")


def _error_lines(proc: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in proc.stderr.splitlines() if line.startswith("Error")]


@pytest.mark.parametrize("where_to", ["local", "s3"])
def test_a_lost_manifest_is_damaged_reported_kept_and_repaired(
    where_to: str, tmp_path: Path, postgres: PostgresServer, fixtures: pytest.FixtureRequest
) -> None:
    slug = f"d{secrets.token_hex(3)}"
    extra = {}
    if where_to == "s3":
        s3: MinioServer = fixtures.getfixturevalue("s3")
        monkeypatch: pytest.MonkeyPatch = fixtures.getfixturevalue("monkeypatch")
        for name, value in s3.env.items():
            if name.startswith("AWS_"):  # the settings themselves are the test's
                monkeypatch.setenv(name, value)
        extra = {"backup_url": f"s3://{s3.bucket}/ops-{slug}", "s3_endpoint_url": s3.endpoint_url}
    settings = _settings(tmp_path, postgres, **extra)
    ctx = _context(settings)
    spec = _spec(slug)
    _create(ctx, postgres, spec)
    backup_id = _backup(ctx, spec)
    store, prefix = backup_access.store_for(ctx), backup_prefix(slug, backup_id)

    def names() -> list[str]:
        return sorted(o.key.rsplit("/", 1)[1] for o in store.list(f"{prefix}/"))

    store.delete(f"{prefix}/manifest.json")

    # The next backup's cleanup does not delete it (the state DB recorded it complete).
    op, _ = request(ctx, "backup", spec)
    done = run_operation(ctx, op.id)
    assert done.status == "succeeded", done.error
    assert [s.output for s in done.steps if s.name == "cleanup-incomplete"] == ["nothing to clean"]
    assert names() == ["db.dump.zst.age", "spec.yaml"]

    verify = _cli(settings, "backup", "verify", slug, "--backup", backup_id)
    assert verify.returncode == 1, (verify.stdout, verify.stderr)
    [error] = _error_lines(verify)
    assert error.startswith("Error: 1 of 1 backups failed verification (1 damaged"), error
    assert f"{backup_id}: DAMAGED (kept)" in verify.stdout
    record = next(r for r in Backups(ctx.db).for_tenant(slug) if r.id == backup_id)
    assert record.verify_result == "damaged"
    assert backup_id not in Backups(ctx.db).verified_ids(slug)

    listed = _cli(settings, "backup", "list", slug, "--json")
    assert listed.returncode == 0, listed.stderr
    row = next(r for r in json.loads(listed.stdout)["backups"] if r["backup_id"] == backup_id)
    assert row["state"] == "damaged" and row["verified_at"] is None
    assert row["last_verify"]["result"] == "damaged"

    pruned = _run(ctx, "prune", spec)  # nor does prune
    assert f"damaged (kept) {backup_id}" in pruned
    assert names() == ["db.dump.zst.age", "spec.yaml"]

    repaired = _cli(settings, "backup", "repair", slug, backup_id)
    assert repaired.returncode == 0, repaired.stderr
    assert "rebuilt from the state DB" in repaired.stdout
    again = _cli(settings, "backup", "verify", slug, "--backup", backup_id)
    assert again.returncode == 0, again.stderr
    assert names() == ["db.dump.zst.age", "manifest.json", "spec.yaml"]
    states = [i.state for i in list_backups(store, slug)]
    assert states == ["complete", "complete"]
    assert backup_id in Backups(ctx.db).verified_ids(slug)


def test_repair_refuses_data_that_does_not_match_the_record(
    tmp_path: Path, postgres: PostgresServer
) -> None:
    slug = f"r{secrets.token_hex(3)}"
    settings = _settings(tmp_path, postgres)
    ctx = _context(settings)
    spec = _spec(slug)
    _create(ctx, postgres, spec)
    backup_id = _backup(ctx, spec)
    where = _dir(settings, slug, backup_id)
    (where / "manifest.json").unlink()
    dump = where / "db.dump.zst.age"
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 0x01
    dump.write_bytes(bytes(data))
    repaired = _cli(settings, "backup", "repair", slug, backup_id)
    assert repaired.returncode == 1
    [error] = _error_lines(repaired)
    assert "does not verify against the state DB's manifest, not repaired" in error
    assert not (where / "manifest.json").exists()
    assert dump.exists()


def test_a_failed_verify_unverifies_and_no_longer_counts_for_prune(
    tmp_path: Path, postgres: PostgresServer
) -> None:
    slug = f"f{secrets.token_hex(3)}"
    settings = _settings(tmp_path, postgres)
    ctx = _context(settings)
    spec = validate_spec(
        _spec(slug).model_dump(mode="json")
        | {"backup": {"retention": {"daily": 1, "weekly": 0, "monthly": 0, "yearly": 0}}}
    )
    _create(ctx, postgres, spec)
    # Ids sort by time, then by a random suffix within one second: bad is the newest.
    good, bad = sorted([_backup(ctx, spec), _backup(ctx, spec)])
    assert Backups(ctx.db).verified_ids(slug) == {good, bad}
    dump = _dir(settings, slug, bad) / "db.dump.zst.age"
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 0x01
    dump.write_bytes(bytes(data))

    drill, _ = request(ctx, "drill", spec)  # the newest complete backup: the bad one
    with pytest.raises(BackupError, match="failed verification"):
        run_operation(ctx, drill.id)
    assert Backups(ctx.db).verified_ids(slug) == {good}  # the drill's verify counts too

    verify = _cli(settings, "backup", "verify", slug)
    assert verify.returncode == 1
    [error] = _error_lines(verify)
    assert error == "Error: 1 of 2 backups failed verification", error
    assert f"{bad}: FAILED: db.dump.zst.age: " in verify.stdout
    assert Backups(ctx.db).verified_ids(slug) == {good}
    records = {r.id: r for r in Backups(ctx.db).for_tenant(slug)}
    assert records[bad].verify_result == "failed"
    assert (records[bad].verify_problem or "").startswith("db.dump.zst.age: ")
    listed = json.loads(_cli(settings, "backup", "list", slug, "--json").stdout)["backups"]
    assert [(r["backup_id"], r["verified_at"] is not None) for r in listed] == [
        (good, True), (bad, False),
    ]  # fmt: skip
    assert listed[1]["last_verify"]["result"] == "failed"

    # daily: 1 keeps the newest (bad); the newest *verified* (good) is kept as well.
    _run(ctx, "prune", spec)
    assert [i.backup_id for i in list_backups(backup_access.store_for(ctx), slug)] == [good, bad]

    every = _cli(settings, "backup", "verify", "--all")  # what the scheduler runs
    assert every.returncode == 1
    assert _error_lines(every) == ["Error: 1 of 2 backups failed verification"]
    assert f"{slug} {bad}: FAILED: db.dump.zst.age: " in every.stdout
    assert f"{slug} {good}: ok" in every.stdout
