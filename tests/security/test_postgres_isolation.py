"""Tenant databases on the shared PostgreSQL server (``platforms/pgtenant``), against the
real server: nothing osp-ops did not create is adopted or dropped, and a tenant's role
connects to its own database only."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import psycopg
import pytest

from osp_ops.domain.errors import PlatformError
from osp_ops.platforms.pgtenant import TenantDatabases, state_database
from tests.fixtures.postgres import PostgresServer

pytestmark = pytest.mark.integration


@pytest.fixture
def dbs(postgres: PostgresServer) -> Iterator[TenantDatabases]:
    d = TenantDatabases(postgres.dsn)
    yield d
    d.close()


def _slug() -> str:
    return f"t{secrets.token_hex(4)}"


def _admin(postgres: PostgresServer, query: str, *args: object) -> list[tuple[object, ...]]:
    with psycopg.connect(postgres.dsn, autocommit=True) as conn:
        cur = conn.execute(query.encode(), args or None)
        return cur.fetchall() if cur.description else []


def _can_connect(postgres: PostgresServer, db: str, user: str, password: str) -> bool:
    try:
        psycopg.connect(postgres.dsn_for(db, user=user, password=password)).close()
    except psycopg.OperationalError:
        return False
    return True


def _foreign_database(postgres: PostgresServer, slug: str) -> str:
    """A database and role named like tenant ``slug``'s that osp-ops did not create (as
    the state DB ``osp_ops`` is for the slug ``ops``), with a table in it."""
    name = f"osp_{slug}"
    _admin(postgres, f"CREATE ROLE {name} LOGIN PASSWORD 'state-pw'")
    _admin(postgres, f"CREATE DATABASE {name} OWNER {name}")
    with psycopg.connect(postgres.dsn_for(name, user=name, password="state-pw")) as conn:
        conn.execute("CREATE TABLE secrets (v text)")
    return name


def test_an_existing_database_and_role_are_not_adopted(
    postgres: PostgresServer, dbs: TenantDatabases
) -> None:
    slug = _slug()
    name = _foreign_database(postgres, slug)
    before = _admin(
        postgres,
        "SELECT pg_get_userbyid(datdba), datacl::text FROM pg_database WHERE datname = %s",
        name,
    )
    with pytest.raises(PlatformError, match="refusing to adopt"):
        dbs.ensure(slug, "tenant-pw", tenant_id="id1")
    with pytest.raises(PlatformError, match="not dropping it"):
        dbs.drop(slug, tenant_id="id1")
    with pytest.raises(PlatformError, match="not dropping it"):
        dbs.drop(slug)
    after = _admin(
        postgres,
        "SELECT pg_get_userbyid(datdba), datacl::text FROM pg_database WHERE datname = %s",
        name,
    )
    assert after == before
    # The password was not changed: the old one still logs in, the tenant's does not.
    assert _can_connect(postgres, name, name, "state-pw")
    assert not _can_connect(postgres, name, name, "tenant-pw")


def test_a_database_of_the_tenants_name_owned_by_another_role_is_refused(
    postgres: PostgresServer, dbs: TenantDatabases
) -> None:
    slug = _slug()
    postgres.create_database(f"osp_{slug}")
    with pytest.raises(PlatformError, match="belongs to postgres"):
        dbs.ensure(slug, "pw", tenant_id="id1")
    assert _admin(postgres, "SELECT 1 FROM pg_roles WHERE rolname = %s", f"osp_{slug}") == []
    with pytest.raises(PlatformError, match="not dropping it"):
        dbs.drop(slug, tenant_id="id1")
    assert _admin(postgres, "SELECT 1 FROM pg_database WHERE datname = %s", f"osp_{slug}")


def test_the_mark_is_written_at_creation_and_names_the_tenant(
    postgres: PostgresServer, dbs: TenantDatabases
) -> None:
    slug = _slug()
    assert dbs.ensure(slug, "pw-1", tenant_id="id1")
    assert not dbs.ensure(slug, "pw-1", tenant_id="id1", set_password=False)
    marks = _admin(
        postgres,
        "SELECT shobj_description(r.oid, 'pg_authid'), shobj_description(d.oid, 'pg_database')"
        " FROM pg_roles r, pg_database d WHERE r.rolname = %s AND d.datname = %s",
        f"osp_{slug}",
        f"osp_{slug}",
    )
    assert marks == [(f"osp-ops tenant {slug} id1",) * 2]
    # Another tenant of the same slug (recreated after its record was forgotten) neither
    # takes it over nor drops it.
    with pytest.raises(PlatformError, match="refusing to adopt"):
        dbs.ensure(slug, "pw-2", tenant_id="id2")
    with pytest.raises(PlatformError, match="not dropping it"):
        dbs.drop(slug, tenant_id="id2")
    assert dbs.drop(slug, tenant_id="id1")
    assert not dbs.drop(slug, tenant_id="id1")
    assert _admin(postgres, "SELECT 1 FROM pg_roles WHERE rolname = %s", f"osp_{slug}") == []


def test_a_tenant_role_connects_to_its_own_database_only(
    postgres: PostgresServer, dbs: TenantDatabases
) -> None:
    a, b = _slug(), _slug()
    dbs.ensure(a, "pw-a", tenant_id="ida")
    dbs.ensure(b, "pw-b", tenant_id="idb")
    user = f"osp_{a}"
    assert _can_connect(postgres, user, user, "pw-a")
    for other in (f"osp_{b}", "postgres", "template1"):
        assert not _can_connect(postgres, other, user, "pw-a"), other
    dbs.drop(a, tenant_id="ida")
    dbs.drop(b, tenant_id="idb")


def test_the_state_db_on_the_tenants_server_is_closed_to_tenant_roles(
    postgres: PostgresServer,
) -> None:
    suffix = secrets.token_hex(4)
    state_db, state_user = f"state_{suffix}", f"state_{suffix}_user"
    _admin(postgres, f"CREATE ROLE {state_user} LOGIN PASSWORD 'state-pw'")
    postgres.create_database(state_db)  # owned by postgres: its user relied on PUBLIC
    state_url = postgres.dsn_for(state_db, user=state_user, password="state-pw")
    state = state_database(
        state_url.replace("postgresql://", "postgresql+psycopg://"), postgres.dsn
    )
    assert state == (state_db, state_user)
    assert state_database("sqlite:///x.db", postgres.dsn) is None
    elsewhere = f"postgresql://u@{postgres.host}:{postgres.port + 1}/{state_db}"
    assert state_database(elsewhere, postgres.dsn) is None
    d = TenantDatabases(postgres.dsn, state=state)
    try:
        slug = _slug()
        d.ensure(slug, "pw", tenant_id="id")
        assert not _can_connect(postgres, state_db, f"osp_{slug}", "pw")
        assert _can_connect(postgres, state_db, state_user, "state-pw")
        d.drop(slug, tenant_id="id")
    finally:
        d.close()
