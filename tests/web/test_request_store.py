"""The portal's request store on SQLite and a real PostgreSQL: single-use tokens,
expiry that deletes personal data, the state table, admin sessions."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from osp_ops.domain.errors import IllegalTransitionError
from osp_ops.store.db import Database, utcnow
from osp_ops.store.requests import AdminStore, RequestState, RequestStore, token_hash
from osp_ops.store.tables import PortalRequestRow

pytestmark = pytest.mark.integration

DATA = {
    "municipality": "Ville de Nanterre",
    "contact_name": "Camille Martin",
    "contact_role": "DGS",
    "contact_email": "camille@nanterre.example.org",
    "contact_phone": "+33 1 23 45 67 89",
}


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'state.db'}"
    else:
        url = str(request.getfixturevalue("postgres").create_database())
    database = Database(url)
    yield database
    database.dispose()


def _new(store: RequestStore, **kw: object) -> tuple[str, str, str]:
    req, confirm, access = store.create(
        slug="nanterre",
        email="camille@nanterre.example.org",
        ip="192.0.2.7",
        data=dict(DATA),
        consent_version="2026-01",
        **kw,  # type: ignore[arg-type]
    )
    return req.id, confirm, access


def test_tokens_are_stored_hashed_and_confirm_once(db: Database) -> None:
    store = RequestStore(db)
    rid, confirm, access = _new(store)
    with db.transaction() as s:
        row = s.get(PortalRequestRow, rid)
        assert row is not None
        assert row.confirm_hash == token_hash(confirm) and confirm not in str(row.__dict__)
        assert access not in str(row.__dict__)
    assert store.confirm("forged-" + confirm) is None
    done = store.confirm(confirm)
    assert done is not None and done.state is RequestState.pending
    assert store.confirm(confirm) is None  # reused
    assert store.by_access(access) is not None and store.by_access(confirm) is None


def test_concurrent_clicks_confirm_exactly_once(db: Database) -> None:
    store = RequestStore(db)
    _rid, confirm, _ = _new(store)
    results: list[object] = []
    barrier = threading.Barrier(4)

    def click() -> None:
        barrier.wait()
        results.append(store.confirm(confirm))

    threads = [threading.Thread(target=click) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r is not None for r in results) == 1


def test_expiry_refuses_the_link_and_deletes_personal_data(db: Database) -> None:
    store = RequestStore(db)
    rid, confirm, _ = _new(store, now=utcnow() - timedelta(hours=25))
    assert store.confirm(confirm) is None  # past 24 h, even before expire() ran
    assert store.expire() == [rid]
    req = store.require(rid)
    assert req.state is RequestState.expired
    assert req.email is None and req.ip is None
    assert set(req.data) == {"municipality"}
    assert "camille" not in repr(req).lower()


def test_state_moves_are_checked(db: Database) -> None:
    store = RequestStore(db)
    rid, confirm, _ = _new(store)
    with pytest.raises(IllegalTransitionError, match="unconfirmed; it cannot become approved"):
        store.move(rid, RequestState.approved, by="ops")
    store.confirm(confirm)
    approved = store.move(rid, RequestState.approved, by="ops", operation_id="op1")
    assert approved.decided_by == "ops" and approved.operation_id == "op1"
    with pytest.raises(IllegalTransitionError):
        store.move(rid, RequestState.rejected, by="ops")
    assert store.active_for_slug("nanterre") is not None
    assert (
        store.count_since(email="camille@nanterre.example.org", since=utcnow() - timedelta(hours=1))
        == 1
    )


def test_admin_sessions(db: Database) -> None:
    admins = AdminStore(db)
    assert admins.put("alice", "$argon2id$fake")
    token = admins.open_session("alice")
    assert admins.session_user(token) == "alice"
    assert admins.session_user(token + "x") is None
    assert admins.session_user(token, now=utcnow() + timedelta(days=1)) is None
    assert not admins.put("alice", "$argon2id$other")  # a new password ends the sessions
    assert admins.session_user(token) is None
    assert admins.remove("alice") and not admins.remove("alice")
