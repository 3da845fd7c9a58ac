"""The audit hash chain and the encrypted secret store, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy import text, update

from osp_ops.domain.errors import NotFoundError, SecretError
from osp_ops.store.audit import AuditKey, AuditLog
from osp_ops.store.db import Database
from osp_ops.store.secrets import MasterKey, SecretStore
from osp_ops.store.tables import SecretRow

pytestmark = pytest.mark.integration


def _log(db: Database, tmp_path: Path) -> AuditLog:
    """The log with the audit key the CLI of ``tmp_path / "data"`` derives."""
    return AuditLog(db, AuditKey(MasterKey(tmp_path / "data" / "master.key")))


def _fill(db: Database, tmp_path: Path, n: int = 5) -> AuditLog:
    audit = _log(db, tmp_path)
    for i in range(n):
        audit.append(actor=f"user{i}", action="tenant.create", tenant=f"t{i}",
                     details={"operation": f"op{i}", "n": i})  # fmt: skip
    assert audit.verify().ok
    return audit


# New values for each column; every one must break the chain wherever it is written.
EDITS = {
    "at": "at = at + interval '1 second'",
    "actor": "actor = 'mallory'",
    "tenant": "tenant = 'other'",
    "action": "action = 'tenant.delete'",
    "details": 'details = \'{"operation": "forged"}\'',
    "prev_hash": "prev_hash = '" + "a" * 64 + "'",
    "hash": "hash = '" + "b" * 64 + "'",
    "id": "id = id + 100",
}


def _edit_sql(db: Database, column: str, row: int) -> str:
    assignment = EDITS[column]
    if column == "at" and not db.is_postgresql:
        assignment = "at = datetime(at, '+1 second')"
    return f"UPDATE audit_log SET {assignment} WHERE id = {row}"


@pytest.mark.parametrize("column", sorted(EDITS))
def test_editing_any_column_of_any_row_is_detected(
    db: Database, column: str, tmp_path: Path
) -> None:
    audit = _fill(db, tmp_path)
    for row in range(1, 6):
        with db.engine.begin() as conn:
            snapshot = conn.execute(text(f"SELECT * FROM audit_log WHERE id = {row}")).one()
            conn.execute(text(_edit_sql(db, column, row)))
        report = audit.verify()
        assert not report.ok, (column, row)
        assert report.problems
        with db.engine.begin() as conn:  # put the row back as it was
            conn.execute(text(f"DELETE FROM audit_log WHERE id IN ({row}, {row + 100})"))
            conn.execute(
                text(
                    "INSERT INTO audit_log (id, at, actor, tenant, action, details, prev_hash, hash)"
                    " VALUES (:id, :at, :actor, :tenant, :action, :details, :prev_hash, :hash)"
                ),
                {**snapshot._asdict(),
                 "details": snapshot.details if isinstance(snapshot.details, str)
                 else json.dumps(snapshot.details)},
            )  # fmt: skip
        assert audit.verify().ok, (column, row)


def test_deleting_a_middle_row_is_detected(db: Database, tmp_path: Path) -> None:
    audit = _fill(db, tmp_path)
    with db.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE id = 3"))
    report = audit.verify()
    assert not report.ok and "rows 3..3 are missing" in report.problems


def test_deleting_the_last_row_is_detected(db: Database, tmp_path: Path) -> None:
    audit = _fill(db, tmp_path)
    with db.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE id = 5"))
    report = audit.verify()
    assert not report.ok
    assert any("ends at row 4 but 5 rows were written" in p for p in report.problems)


def test_deleting_every_row_is_detected(db: Database, tmp_path: Path) -> None:
    audit = _fill(db, tmp_path)
    with db.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log"))
    assert not audit.verify().ok


def test_concurrent_appends_keep_one_chain(db: Database, tmp_path: Path) -> None:
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        own = Database(db.url, migrate=False)
        try:
            for i in range(15):
                _log(own, tmp_path).append(actor=f"w{n}", action="x", details={"i": i})
        except BaseException as e:  # reported below
            errors.append(e)
        finally:
            own.dispose()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    report = _log(db, tmp_path).verify()
    assert report.ok, report.problems
    assert report.rows == 60


def test_audit_verify_cli_exits_non_zero_when_tampered(db: Database, tmp_path: Path) -> None:
    _fill(db, tmp_path, 3)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OSP_OPS_")}
    env |= {"OSP_OPS_STATE_URL": db.url, "OSP_OPS_DATA_DIR": str(tmp_path / "data")}
    cmd = [sys.executable, "-m", "osp_ops.cli", "audit", "verify"]
    ok = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    assert ok.returncode == 0, ok.stderr
    assert "audit log intact: 3 rows" in ok.stdout
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET actor = 'mallory' WHERE id = 2"))
    bad = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    assert bad.returncode == 7
    assert "row 2: content does not match its MAC" in bad.stdout
    assert "Error: audit log tampered with" in bad.stderr


# --- secrets ----------------------------------------------------------------------------


@pytest.fixture
def store(db: Database, tmp_path: Path) -> SecretStore:
    return SecretStore(db, MasterKey(tmp_path / "keys" / "master.key"))


def test_secrets_encrypt_and_decrypt(store: SecretStore, db: Database, tmp_path: Path) -> None:
    assert store.ensure("lyon", "db_password", lambda: "canary-s3cret-value-1")
    assert not store.ensure("lyon", "db_password", lambda: "other-value-xxxxxxxx")
    store.put("lyon", "admin_password", "canary-s3cret-value-2")
    assert store.get("lyon", "db_password") == "canary-s3cret-value-1"
    assert store.all_for("lyon") == {
        "db_password": "canary-s3cret-value-1", "admin_password": "canary-s3cret-value-2",
    }  # fmt: skip
    assert store.names("lyon") == ["admin_password", "db_password"]
    key_file = tmp_path / "keys" / "master.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    with db.engine.connect() as conn:
        blobs = [bytes(r[0]) for r in conn.execute(text("SELECT ciphertext FROM secrets"))]
    assert blobs and all(b"canary" not in b for b in blobs)
    with pytest.raises(NotFoundError, match="has no secret 'nope'"):
        store.get("lyon", "nope")
    assert store.forget("lyon") == 2
    assert store.names("lyon") == []


def test_wrong_master_key_is_a_secret_error(
    store: SecretStore, db: Database, tmp_path: Path
) -> None:
    store.put("lyon", "db_password", "canary-s3cret-value-3")
    other = SecretStore(db, MasterKey(tmp_path / "other" / "master.key"))
    with pytest.raises(SecretError, match="not the configured master key"):
        other.get("lyon", "db_password")
    # Same key id, different bytes (a corrupted key file): authentication fails.
    with db.engine.begin() as conn:
        row = conn.execute(text("SELECT key_id FROM secrets")).one()
    other.key.path.write_bytes(os.urandom(32))
    forged_id = hashlib.sha256(other.key.path.read_bytes()).hexdigest()[:16]
    with db.transaction() as s:
        s.execute(update(SecretRow).values(key_id=forged_id))
    assert row.key_id != ""
    with pytest.raises(SecretError, match="fails authentication"):
        other.get("lyon", "db_password")
    (tmp_path / "short.key").write_bytes(b"short")
    with pytest.raises(SecretError, match="not a 32-byte key"):
        SecretStore(db, MasterKey(tmp_path / "short.key")).get("lyon", "db_password")


def test_ciphertext_is_bound_to_its_tenant_and_name(store: SecretStore, db: Database) -> None:
    store.put("lyon", "db_password", "canary-s3cret-value-4")
    store.put("paris", "db_password", "paris-value-xxxxxxxxx")
    store.put("lyon", "admin_password", "lyon-admin-xxxxxxxxx")
    with db.transaction() as s:
        lyon = s.get(SecretRow, ("lyon", "db_password"))
        assert lyon is not None
        blob = lyon.ciphertext
        for target in (("paris", "db_password"), ("lyon", "admin_password")):
            row = s.get(SecretRow, target)
            assert row is not None
            row.ciphertext = blob
    with pytest.raises(SecretError, match="'db_password' of 'paris' fails authentication"):
        store.get("paris", "db_password")
    with pytest.raises(SecretError, match="'admin_password' of 'lyon' fails authentication"):
        store.get("lyon", "admin_password")
    assert store.get("lyon", "db_password") == "canary-s3cret-value-4"


def test_rotate_key_keeps_values_readable(store: SecretStore, tmp_path: Path) -> None:
    values = {f"s{i}": f"value-{i}-xxxxxxxxxxxx" for i in range(5)}
    for name, value in values.items():
        store.put("lyon", name, value)
    old_key = store.key.path.read_bytes()
    assert store.rotate_key() == 5
    assert store.key.path.read_bytes() != old_key
    assert not store.key.pending.exists()
    assert store.all_for("lyon") == values
    # Only the new key is needed now.
    fresh = SecretStore(store.db, MasterKey(store.key.path))
    assert fresh.all_for("lyon") == values


class _CrashBeforePromote(MasterKey):
    """A master key whose rotation dies after the secrets were re-sealed (a crash)."""

    def promote(self) -> None:
        raise KeyboardInterrupt("simulated crash before the key file is replaced")


def test_rotation_interrupted_after_resealing_resumes(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "keys" / "master.key"
    store = SecretStore(db, MasterKey(path))
    store.put("lyon", "a", "value-a-xxxxxxxxxxxx")
    store.put("lyon", "b", "value-b-xxxxxxxxxxxx")
    crashing = SecretStore(db, _CrashBeforePromote(path))
    with pytest.raises(KeyboardInterrupt):
        crashing.rotate_key()
    assert crashing.key.pending.exists()
    # Mid-rotation, both keys are loaded: everything still reads.
    assert SecretStore(db, MasterKey(path)).all_for("lyon") == {
        "a": "value-a-xxxxxxxxxxxx", "b": "value-b-xxxxxxxxxxxx",
    }  # fmt: skip
    pending = crashing.key.pending.read_bytes()
    resumed = SecretStore(db, MasterKey(path))
    assert resumed.rotate_key() == 0  # already re-sealed with the pending key
    assert path.read_bytes() == pending and not resumed.key.pending.exists()
    assert resumed.get("lyon", "b") == "value-b-xxxxxxxxxxxx"


def test_rotation_interrupted_before_resealing_resumes(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "keys" / "master.key"
    store = SecretStore(db, MasterKey(path))
    store.put("lyon", "a", "value-a-xxxxxxxxxxxx")
    # The crash came right after the new key file was written.
    store.key.pending.write_bytes(os.urandom(32))
    pending = store.key.pending.read_bytes()
    assert store.get("lyon", "a") == "value-a-xxxxxxxxxxxx"
    assert store.rotate_key() == 1
    assert path.read_bytes() == pending
    assert SecretStore(db, MasterKey(path)).get("lyon", "a") == "value-a-xxxxxxxxxxxx"
