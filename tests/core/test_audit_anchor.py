"""An audit log that cannot be rewritten unnoticed: rows MACed with a key outside the
state DB, the head anchored in the backup store. A chain recomputed with plain SHA-256,
a truncated log and a wiped log all fail `audit verify`, on SQLite and PostgreSQL (the
``db`` fixture), with anchors in the local store and in MinIO (object lock)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import create_engine, text

from osp_ops.engine.audit_anchors import PREFIX, StoreAnchors
from osp_ops.objects.local import LocalStore
from osp_ops.objects.s3 import S3Store
from osp_ops.store.audit import AuditKey, AuditLog
from osp_ops.store.db import Database, _alembic_config
from osp_ops.store.secrets import MasterKey
from tests.fixtures.minio import MinioServer

pytestmark = pytest.mark.integration


def _log(db: Database, tmp_path: Path, anchors: StoreAnchors | None = None) -> AuditLog:
    key = AuditKey(MasterKey(tmp_path / "data" / "master.key"))
    return AuditLog(db, key, anchors=anchors, anchor_every=1000)


def _local(tmp_path: Path) -> StoreAnchors:
    return StoreAnchors(lambda: LocalStore(tmp_path / "data" / "backups"))


def _fill(audit: AuditLog, n: int = 6) -> None:
    for i in range(n):
        audit.append(actor=f"user{i}", action="tenant.create", tenant=f"t{i}",
                     details={"operation": f"op{i}", "n": i})  # fmt: skip


def _sha_chain(db: Database, *, reset_head: bool = True) -> None:
    """What someone with write access to the state DB but no key can do: rewrite a row,
    then recompute every hash with plain SHA-256 (the pre-0004 rule) and the head."""

    def normal(at: object) -> str:
        if isinstance(at, str):
            at = datetime.fromisoformat(at)
        assert isinstance(at, datetime)
        return (at.astimezone(UTC).replace(tzinfo=None) if at.tzinfo else at).isoformat()

    with db.engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET actor = 'mallory' WHERE id = 2"))
        prev = "0" * 64
        rows = conn.execute(text("SELECT * FROM audit_log ORDER BY id")).mappings().all()
        for r in rows:
            details = r["details"] if isinstance(r["details"], dict) else json.loads(r["details"])
            body = json.dumps(
                {"id": r["id"], "at": normal(r["at"]), "actor": r["actor"], "tenant": r["tenant"],
                 "action": r["action"], "details": details},
                sort_keys=True, separators=(",", ":"), default=str,
            )  # fmt: skip
            h = hashlib.sha256((prev + body).encode()).hexdigest()
            conn.execute(
                text("UPDATE audit_log SET prev_hash = :p, hash = :h WHERE id = :i"),
                {"p": prev, "h": h, "i": r["id"]},
            )
            prev = h
        if reset_head:  # and claim every row predates keyed chains
            conn.execute(
                text("UPDATE audit_head SET last_hash = :h, mac_from = last_id + 1, mac = NULL"),
                {"h": prev},
            )


def _truncate(db: Database) -> None:
    """Delete the last rows and point the head at the new last row (the MAC is kept or
    dropped: neither can be recomputed without the key)."""
    with db.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE id > 3"))
        h = conn.execute(text("SELECT hash FROM audit_log WHERE id = 3")).scalar_one()
        conn.execute(
            text("UPDATE audit_head SET last_id = 3, last_hash = :h, mac_from = 4, mac = NULL"),
            {"h": h},
        )


def _wipe(db: Database) -> None:
    with db.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log"))
        conn.execute(text("DELETE FROM audit_head"))


TAMPERINGS: dict[str, Callable[[Database], None]] = {
    "rewritten-sha256": _sha_chain,
    "rewritten-sha256-head-kept": lambda db: _sha_chain(db, reset_head=False),
    "truncated": _truncate,
    "wiped": _wipe,
}


@pytest.mark.parametrize("tampering", sorted(TAMPERINGS))
def test_tampering_fails_verify_against_the_anchor(
    db: Database, tmp_path: Path, tampering: str
) -> None:
    audit = _log(db, tmp_path, _local(tmp_path))
    _fill(audit)
    first = audit.verify()
    assert first.ok, first.problems
    assert first.anchored is not None and first.anchored.startswith("000000000006-")
    TAMPERINGS[tampering](db)
    report = audit.verify()
    assert not report.ok, tampering
    assert report.anchored is None  # a broken chain is never anchored
    assert not audit.verify().ok  # and stays broken


def test_the_anchor_is_what_catches_a_wiped_log(db: Database, tmp_path: Path) -> None:
    audit = _log(db, tmp_path, _local(tmp_path))
    _fill(audit)
    assert audit.verify().ok
    _wipe(db)
    assert _log(db, tmp_path).verify().ok  # the state DB alone looks like a new log
    report = audit.verify()
    assert any("rows were deleted (a truncated or wiped log)" in p for p in report.problems)


def test_a_forged_anchor_fails(db: Database, tmp_path: Path) -> None:
    audit = _log(db, tmp_path, _local(tmp_path))
    _fill(audit)
    name = audit.verify().anchored
    assert name is not None
    path = tmp_path / "data" / "backups" / PREFIX / name
    doc = json.loads(path.read_text())
    doc["body"]["last_id"] = 2
    forged = path.with_name("9" * 12 + "-x.json")
    forged.write_text(json.dumps(doc))
    report = audit.verify()
    assert any("fails its MAC" in p for p in report.problems), report.problems


def test_anchors_in_minio_under_object_lock(db: Database, tmp_path: Path, s3: MinioServer) -> None:
    bucket = s3.create_bucket(object_lock=True)

    def store() -> S3Store:
        return S3Store(
            bucket=bucket,
            prefix="backups",
            endpoint_url=s3.endpoint_url,
            region=s3.region,
            credentials={"access_key": s3.access_key, "secret_key": s3.secret_key},
            object_lock_days=1,
        )

    audit = _log(db, tmp_path, StoreAnchors(store))
    _fill(audit)
    name = audit.verify().anchored
    assert name is not None
    head = s3.client().head_object(Bucket=bucket, Key=f"backups/{PREFIX}{name}")
    assert head["ObjectLockMode"] == "COMPLIANCE"
    _sha_chain(db)
    assert not audit.verify().ok
    _wipe(db)
    report = audit.verify()
    assert any("wiped log" in p for p in report.problems), report.problems


def test_appends_anchor_periodically(db: Database, tmp_path: Path) -> None:
    anchors = _local(tmp_path)
    audit = AuditLog(db, AuditKey(MasterKey(tmp_path / "k" / "master.key")), anchors=anchors,
                     anchor_every=3)  # fmt: skip
    _fill(audit, 7)
    names = sorted(p.name for p in (tmp_path / "data" / "backups" / PREFIX).iterdir())
    # the first append seals the head and anchors, then every 3rd row
    assert [n[:12] for n in names] == ["000000000001", "000000000003", "000000000006"]


def test_a_chain_from_before_0004_is_kept_and_protected(tmp_path: Path) -> None:
    """Rows of an old state DB keep their SHA-256 links; the first keyed row links to
    them, so rewriting one of them breaks the chain."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(url)
    command.upgrade(_alembic_config(engine), "0003")
    prev = "0" * 64
    with engine.begin() as conn:
        for i in (1, 2, 3):
            at = datetime(2026, 11, 1, 12, 0, i)
            body = json.dumps(
                {"id": i, "at": at.isoformat(), "actor": "old", "tenant": None,
                 "action": "x", "details": {}},
                sort_keys=True, separators=(",", ":"), default=str,
            )  # fmt: skip
            h = hashlib.sha256((prev + body).encode()).hexdigest()
            conn.execute(
                text("INSERT INTO audit_log VALUES (:i, :at, 'old', NULL, 'x', '{}', :p, :h)"),
                {"i": i, "at": at, "p": prev, "h": h},
            )
            prev = h
        conn.execute(text("INSERT INTO audit_head VALUES (1, 3, :h)"), {"h": prev})
    engine.dispose()
    db = Database(url)  # migrates to the head
    try:
        audit = _log(db, tmp_path, _local(tmp_path))
        assert audit.verify().ok
        audit.append(actor="new", action="y")
        report = audit.verify()
        assert report.ok and report.rows == 4, report.problems
        _sha_chain(db, reset_head=False)  # rewrites row 2 and every hash after it
        assert not audit.verify().ok
    finally:
        db.dispose()


def test_audit_verify_cli_fails_on_a_rewritten_chain(db: Database, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OSP_OPS_")}
    env |= {"OSP_OPS_STATE_URL": db.url, "OSP_OPS_DATA_DIR": str(tmp_path / "data")}

    def cli(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "osp_ops.cli", *argv], env=env,
                              capture_output=True, text=True, check=False)  # fmt: skip

    for _ in range(3):
        assert cli("secrets", "rotate-key").returncode == 0
    ok = cli("audit", "verify")
    assert ok.returncode == 0, ok.stderr
    assert "audit log intact: 3 rows" in ok.stdout
    _sha_chain(db)
    bad = cli("audit", "verify")
    assert bad.returncode == 7, bad.stdout
    assert "Error: audit log tampered with" in bad.stderr
    _wipe(db)
    assert cli("audit", "verify").returncode == 7
