"""The state store on SQLite and PostgreSQL: migrations, tenants, operations, leases."""

from __future__ import annotations

import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select

from osp_ops.domain.errors import (
    IllegalTransitionError,
    LeaseHeldError,
    NotFoundError,
    TemporaryError,
)
from osp_ops.domain.phases import Phase
from osp_ops.store.db import (
    HEAD_REVISION,
    Database,
    alembic_head,
    current_revision,
    ensure_schema,
    make_engine,
)
from osp_ops.store.leases import Leases, holder_id, holder_is_dead
from osp_ops.store.operations import Operations
from osp_ops.store.tables import Base, LeaseRow, OperationRow
from osp_ops.store.tenants import Tenants
from tests.fixtures.postgres import PostgresServer

pytestmark = pytest.mark.integration


# --- migrations -------------------------------------------------------------------------


def test_migrations_create_exactly_the_declared_schema(db: Database) -> None:
    tables = set(inspect(db.engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
    assert "alembic_version" in tables
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == [], f"tables.py and the migrations disagree: {diff}"


def test_migrating_twice_is_a_no_op(db: Database) -> None:
    Tenants(db).upsert(slug="a", app="decidim", desired_version="0.28.5", platform="hosts",
                       spec_hash="h")  # fmt: skip
    ensure_schema(db.engine)
    again = Database(db.url)
    assert Tenants(again).require("a").desired_version == "0.28.5"
    again.dispose()


def test_head_revision_is_the_migrations_head(db: Database) -> None:
    # A state DB at HEAD_REVISION opens without alembic: it must be the newest migration.
    assert alembic_head(db.engine) == HEAD_REVISION == current_revision(db.engine)


def test_an_older_state_db_is_migrated_on_open(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    Database(url).dispose()
    with make_engine(url).begin() as conn:  # as if the newest migration were not applied
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = 'older'")
    with pytest.raises(Exception, match="older"):  # alembic itself ran (and knows no 'older')
        Database(url)


def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 's.db'}")
    with database.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    database.dispose()


# --- tenants ----------------------------------------------------------------------------


def test_tenant_records_and_phases(db: Database) -> None:
    tenants = Tenants(db)
    rec = tenants.upsert(slug="lyon", app="decidim", desired_version="0.28.4", platform="hosts",
                         spec_hash="h1")  # fmt: skip
    assert rec.phase is Phase.requested
    tenants.set_phase("lyon", Phase.provisioning)
    tenants.set_phase("lyon", Phase.ready)
    with pytest.raises(IllegalTransitionError, match="'lyon' is ready; it cannot become deleted"):
        tenants.set_phase("lyon", Phase.deleted)
    assert tenants.require("lyon").phase is Phase.ready  # a refused move changes nothing
    tenants.set_phase("lyon", Phase.failed, "broken", force=True)
    tenants.set_observed_version("lyon", "0.28.4")
    rec = tenants.upsert(slug="lyon", app="decidim", desired_version="0.28.5", platform="hosts",
                         spec_hash="h2")  # fmt: skip
    assert (rec.phase, rec.reason, rec.observed_version, rec.desired_version) == (
        Phase.failed, "broken", "0.28.4", "0.28.5",
    )  # fmt: skip
    assert rec.created_at.tzinfo is not None or db.engine.dialect.name == "sqlite"
    assert [r.slug for r in tenants.list()] == ["lyon"]
    with pytest.raises(NotFoundError, match="no tenant 'paris'"):
        tenants.require("paris")
    with pytest.raises(NotFoundError):
        tenants.set_phase("paris", Phase.ready)
    tenants.remove("lyon")
    assert tenants.get("lyon") is None


# --- operations -------------------------------------------------------------------------

STEPS = ("a", "b", "c")


def test_enqueue_deduplicates_identical_pending_operations(db: Database) -> None:
    ops = Operations(db)
    first, created = ops.enqueue(tenant="t", kind="create", steps=STEPS, params={"x": 1},
                                 requested_by="me")  # fmt: skip
    assert created and first.status == "queued" and [s.name for s in first.steps] == list(STEPS)
    again, created = ops.enqueue(tenant="t", kind="create", steps=STEPS, params={"x": 1},
                                 requested_by="you")  # fmt: skip
    assert (again.id, created) == (first.id, False)
    other, created = ops.enqueue(tenant="t", kind="create", steps=STEPS, params={"x": 2},
                                 requested_by="me")  # fmt: skip
    assert created and other.id != first.id
    ops.finish(first.id, "succeeded")
    fresh, created = ops.enqueue(tenant="t", kind="create", steps=STEPS, params={"x": 1},
                                 requested_by="me")  # fmt: skip
    assert created and fresh.id != first.id  # finished operations do not absorb new ones


def test_step_progress_and_requeue(db: Database) -> None:
    ops = Operations(db)
    op, _ = ops.enqueue(tenant="t", kind="k", steps=STEPS, params={}, requested_by="me")
    assert ops.get(op.id[:17]).id == op.id  # a unique prefix finds it
    with pytest.raises(NotFoundError):
        ops.get("nope")
    assert ops.step_started(op.id, 0) == 1
    ops.step_done(op.id, 0, 1.5, "ok")
    assert ops.step_started(op.id, 1) == 1
    ops.step_failed(op.id, 1, "boom", final=False)
    assert ops.step_started(op.id, 1) == 2
    ops.step_failed(op.id, 1, "boom again", final=True)
    ops.finish(op.id, "failed", "boom again")
    got = ops.get(op.id)
    assert [(s.status, s.attempts) for s in got.steps] == [
        ("done", 1),
        ("failed", 2),
        ("pending", 0),
    ]
    assert got.status == "failed" and got.error == "boom again" and got.finished_at is not None
    ops.requeue(op.id)
    got = ops.get(op.id)
    assert got.status == "queued" and got.error is None
    assert [(s.status, s.attempts) for s in got.steps] == [
        ("done", 1),
        ("pending", 0),
        ("pending", 0),
    ]
    ops.log(op.id, step="a", status="changed", message="did a", host="h1")
    assert [(e["step"], e["status"], e["host"]) for e in ops.events(op.id)] == [
        ("a", "changed", "h1")
    ]
    ops.cancel(op.id)
    assert ops.is_cancelled(op.id)


def test_two_claimers_never_claim_the_same_operation(db: Database) -> None:
    ops = Operations(db)
    ids = {
        ops.enqueue(tenant=f"t{i}", kind="k", steps=STEPS, params={}, requested_by="me")[0].id
        for i in range(40)
    }
    claimed: list[str] = []
    lock = threading.Lock()
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def claimer(n: int) -> None:
        own = Database(db.url, migrate=False)
        try:
            barrier.wait()
            while (op_id := Operations(own).claim_next(f"w{n}")) is not None:
                with lock:
                    claimed.append(op_id)
        except BaseException as e:  # reported below
            errors.append(e)
        finally:
            own.dispose()

    threads = [threading.Thread(target=claimer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(claimed) == sorted(ids)
    assert Counter(claimed).most_common(1)[0][1] == 1
    statuses = {ops.get(i).status for i in ids}
    assert statuses == {"running"}


def test_claim_skips_excluded_tenants(db: Database) -> None:
    ops = Operations(db)
    a, _ = ops.enqueue(tenant="a", kind="k", steps=STEPS, params={}, requested_by="me")
    b, _ = ops.enqueue(tenant="b", kind="k", steps=STEPS, params={}, requested_by="me")
    assert ops.claim_next("w", exclude_tenants=["a"]) == b.id
    assert ops.claim_next("w", exclude_tenants=["a"]) is None
    assert ops.claim_next("w") == a.id


def test_postgresql_claim_skips_a_locked_row(postgres: PostgresServer) -> None:
    """SKIP LOCKED: a row another transaction holds is passed over, not waited for."""
    db = Database(postgres.create_database())
    assert db.is_postgresql
    ops = Operations(db)
    first, _ = ops.enqueue(tenant="a", kind="k", steps=STEPS, params={}, requested_by="me")
    second, _ = ops.enqueue(tenant="b", kind="k", steps=STEPS, params={}, requested_by="me")
    with db.transaction() as s:
        s.execute(select(OperationRow).where(OperationRow.id == first.id).with_for_update())
        started = time.monotonic()
        assert Operations(db).claim_next("w") == second.id
        assert time.monotonic() - started < 2
        assert Operations(db).claim_next("w") is None
    assert ops.claim_next("w") == first.id
    db.dispose()


# --- leases -----------------------------------------------------------------------------


def test_lease_acquire_renew_release_and_fencing(db: Database) -> None:
    leases = Leases(db)
    a = leases.acquire("t", "alice@elsewhere:1:1", ttl=30)
    assert a.token == 1
    with pytest.raises(LeaseHeldError) as exc:
        leases.acquire("t", "bob@elsewhere:2:2", ttl=30)
    assert exc.value.holder == "alice@elsewhere:1:1"
    assert "alice@elsewhere:1:1 holds its lease" in str(exc.value) and exc.value.exit_code == 5
    assert leases.holder("t")[0] == "alice@elsewhere:1:1"
    a = leases.renew(a, ttl=30)
    leases.release(a)
    assert leases.holder("t") == (None, 0.0)
    b = leases.acquire("t", "bob@elsewhere:2:2", ttl=30)
    assert b.token == 2
    with pytest.raises(TemporaryError, match="was lost"):
        leases.renew(a, ttl=30)  # alice was fenced out
    leases.release(a)  # a stale release does not free bob's lease
    assert leases.holder("t")[0] == "bob@elsewhere:2:2"


def test_expired_lease_is_taken_over_and_old_holder_fenced(db: Database) -> None:
    leases = Leases(db)
    old = leases.acquire("t", "alice@elsewhere:1:1", ttl=0.2)
    time.sleep(0.3)
    new = leases.acquire("t", "bob@elsewhere:2:2", ttl=30)
    assert new.token == old.token + 1
    with pytest.raises(TemporaryError):
        leases.renew(old, ttl=30)


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_lease_of_a_dead_local_process_is_reclaimed_at_once(db: Database) -> None:
    leases = Leases(db)
    me = holder_id("op:x")
    dead = me.rsplit(":", 2)[0] + f":{_dead_pid()}:12345"
    assert holder_is_dead(dead) and not holder_is_dead(me)
    leases.acquire("t", dead, ttl=3600)
    assert leases.acquire("t", me, ttl=30).token == 2


def test_lease_of_another_host_waits_for_its_ttl(db: Database) -> None:
    leases = Leases(db)
    remote = f"op:y@other-host.example:{_dead_pid()}:1"
    assert not holder_is_dead(remote)
    leases.acquire("t", remote, ttl=0.5)
    with pytest.raises(LeaseHeldError, match=r"other-host\.example"):
        leases.acquire("t", holder_id("op:x"), ttl=30)
    time.sleep(0.6)
    assert leases.acquire("t", holder_id("op:x"), ttl=30).token == 2


def test_concurrent_acquire_has_one_winner(db: Database) -> None:
    Leases(db).acquire("t", "seed@elsewhere:0:0", ttl=0.01)  # the row exists, expired
    time.sleep(0.02)
    results: list[str] = []
    barrier = threading.Barrier(8)

    def contender(n: int) -> None:
        own = Database(db.url, migrate=False)
        try:
            barrier.wait()
            Leases(own).acquire("t", f"c{n}@elsewhere:{n}:0", ttl=30)
            results.append("won")
        except LeaseHeldError:
            results.append("held")
        finally:
            own.dispose()

    threads = [threading.Thread(target=contender, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["held"] * 7 + ["won"]
    with db.transaction() as s:
        assert s.get(LeaseRow, "t").token == 2  # type: ignore[union-attr]
