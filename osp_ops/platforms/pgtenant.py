"""Tenant databases on the shared PostgreSQL server of Kubernetes tenants (psycopg).

One role and one database per tenant, both named ``osp_<slug>`` (dashes as
underscores), managed through ``TenantDatabases`` (one admin connection, reused). The
role carries the tenant's ownership mark (``COMMENT ON ROLE``) and owns its database;
an existing role or database that is not the tenant's is refused, never adopted.
``CONNECT`` is revoked from PUBLIC on the tenant's database and on ``postgres`` and
``template1``, so a tenant's role can connect to its own database only. Every function
is idempotent. Passwords are sent as SQL literals composed client-side (utility
statements take no bind parameters) and never logged; errors are reported without the
statement text.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

import psycopg
from psycopg import sql

from osp_ops.domain.errors import ConfigError, PlatformError, TemporaryError
from osp_ops.domain.names import db_name_for, ownership_mark


@dataclass(frozen=True)
class ServerAddress:
    """Where tenants reach the shared server (host and port of the admin DSN)."""

    host: str
    port: int


def server_address(admin_dsn: str) -> ServerAddress:
    """Host and port of the admin DSN (URL form ``postgresql://user:pw@host:port/db``)."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(admin_dsn)
    except psycopg.ProgrammingError as e:
        raise ConfigError("platform_db_admin_dsn is not a valid PostgreSQL DSN") from e
    host = str(info.get("host") or "")
    if not host or host.startswith("/"):
        parsed = urlsplit(admin_dsn)
        host = parsed.hostname or ""
    if not host or host.startswith("/"):
        raise ConfigError(
            "platform_db_admin_dsn must name a TCP host that pods can reach, not a socket"
        )
    return ServerAddress(host=host, port=int(info.get("port") or 5432))


def tenant_url(admin_dsn: str, slug: str, password: str) -> str:
    """The tenant's DATABASE_URL (goes only into the tenant's Secret)."""
    addr = server_address(admin_dsn)
    name = db_name_for(slug)
    host = f"[{addr.host}]" if ":" in addr.host else addr.host
    return f"postgresql://{name}:{quote(password, safe='')}@{host}:{addr.port}/{name}"


def _connect(admin_dsn: str) -> psycopg.Connection[tuple[object, ...]]:
    try:
        return psycopg.connect(admin_dsn, autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as e:
        raise TemporaryError(
            f"cannot connect to the tenants' PostgreSQL server: {str(e).splitlines()[0]}",
            delay=5,
        ) from e


def _failed(action: str, name: str, e: psycopg.Error) -> PlatformError:
    primary = (e.diag.message_primary if e.diag else None) or "error"
    return PlatformError(
        f"PostgreSQL: cannot {action} database {name}: {type(e).__name__}: {primary}"
    )


def state_database(state_url: str | None, admin_dsn: str) -> tuple[str, str] | None:
    """(database, user) of the osp-ops state DB when it lives on the tenants' server
    (same host and port as the admin DSN), else None."""
    if not state_url or not state_url.split(":", 1)[0].startswith("postgres"):
        return None
    state = urlsplit(state_url)
    addr = server_address(admin_dsn)
    same = (state.hostname or "", state.port or 5432) == (addr.host, addr.port)
    db, user = state.path.lstrip("/"), state.username or ""
    return (db, unquote(user)) if same and db and user else None


class TenantDatabases:
    """Tenant roles and databases over one reused admin connection (thread-safe).

    ``state``: the state DB and its user when they share the server; PUBLIC loses
    CONNECT on it too, after its user is granted it."""

    def __init__(self, admin_dsn: str, *, state: tuple[str, str] | None = None) -> None:
        self._dsn = admin_dsn
        self._state = state
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None
        self._lock = threading.Lock()

    def _connection(self) -> psycopg.Connection[tuple[object, ...]]:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = _connect(self._dsn)
        return self._conn

    def close(self) -> None:
        """Close the admin connection."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def ensure(
        self, slug: str, password: str, *, tenant_id: str | None = None, set_password: bool = True
    ) -> bool:
        """Create (or fix) the tenant's role and database; True when something was created.

        The role is created with the tenant's ownership mark as its comment; a role
        without this tenant's mark, or a database its role does not own, is refused
        (PlatformError, nothing changed): osp-ops never adopts what it did not create.
        One query reads the state; statements run only for what is missing or wrong, so
        a converged tenant costs no write. The password is set when the role is created
        and when ``set_password`` (a rotated ``db_password``).
        """
        name = db_name_for(slug)
        ident = sql.Identifier(name)
        mark = ownership_mark(slug, tenant_id)
        created = False
        with self._lock:
            try:
                conn = self._connection()
                row = conn.execute(_STATE, (name, name, name)).fetchone()
                assert row is not None
                role_exists, role_mark, owner, public_connect = row
                _refuse_foreign(name, mark, role_exists, role_mark, owner)
                if not role_exists:
                    # One transaction: a role without its mark would be refused forever.
                    with conn.transaction():
                        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(ident))
                        comment = sql.SQL("COMMENT ON ROLE {} IS {}")
                        conn.execute(comment.format(ident, sql.Literal(mark)))
                    created = set_password = True
                if set_password:
                    conn.execute(
                        sql.SQL(
                            "ALTER ROLE {} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE "
                            "PASSWORD {}"
                        ).format(ident, sql.Literal(password))
                    )
                if owner is None:
                    conn.execute(
                        sql.SQL(
                            "CREATE DATABASE {} OWNER {} ENCODING 'UTF8' TEMPLATE template0"
                        ).format(ident, ident)
                    )
                    conn.execute(
                        sql.SQL("COMMENT ON DATABASE {} IS {}").format(ident, sql.Literal(mark))
                    )
                    created = True
                if owner is None or public_connect:
                    conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(ident))
                    conn.execute(
                        sql.SQL("GRANT CONNECT, TEMPORARY ON DATABASE {} TO {}").format(
                            ident, ident
                        )
                    )
                _close_shared(conn, self._state)
            except psycopg.Error as e:
                raise _failed("set up", name, e) from e
        return created

    def drop(self, slug: str, *, tenant_id: str | None = None) -> bool:
        """Drop the tenant's databases and role (connections are ended); True if one existed.

        Only a role carrying the tenant's ownership mark is dropped, with the databases it
        owns: its own and those restores and drills left beside it (``<db>_old_<ts>``,
        ``<db>_r<ts>``, ``<db>_drill_<hex>``); deleting the tenant is the operator's
        confirmation that they may go too. Without ``tenant_id`` any mark of this slug
        counts. A database or role of the tenant's name that is not its own is refused.
        """
        name = db_name_for(slug)
        ident = sql.Identifier(name)
        mark = ownership_mark(slug, tenant_id)
        with self._lock:
            try:
                conn = self._connection()
                row = conn.execute(_STATE, (name, name, name)).fetchone()
                assert row is not None
                role_exists, role_mark, owner, _ = row
                if not role_exists and owner is None:
                    return False
                ok = role_mark == mark or (tenant_id is None and _marks_slug(role_mark, slug))
                if not ok or (owner is not None and owner != name):
                    raise PlatformError(
                        f"PostgreSQL: role or database {name} is not tenant {slug}'s (no "
                        f"ownership mark {mark!r}, or another owner): not dropping it"
                    )
                databases = [
                    str(r[0])
                    for r in conn.execute(
                        "SELECT datname FROM pg_database WHERE (datname = %s OR starts_with("
                        "datname, %s)) AND datdba = (SELECT oid FROM pg_roles WHERE rolname = %s)",
                        (name, name + "_", name),
                    ).fetchall()
                ]
                for db in sorted(databases, key=lambda d: d != name):
                    drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                    conn.execute(drop.format(sql.Identifier(db)))
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(ident))
            except psycopg.Error as e:
                raise _failed("drop", name, e) from e
        return True


# Role exists, its comment, the database's owner, whether PUBLIC may connect to it.
_STATE = (
    "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = %s),"
    " (SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = %s),"
    " d.owner, d.public_connect"
    " FROM (SELECT NULL) AS one LEFT JOIN (SELECT pg_get_userbyid(datdba) AS owner,"
    "  has_database_privilege('public', datname, 'CONNECT') AS public_connect"
    "  FROM pg_database WHERE datname = %s) AS d ON true"
)

# Databases every server has, which no tenant role may connect to (nor list others from).
SHARED_DATABASES = ("postgres", "template1")


def _marks_slug(mark: object, slug: str) -> bool:
    return isinstance(mark, str) and (mark + " ").startswith(ownership_mark(slug, None) + " ")


def _refuse_foreign(
    name: str, mark: str, role_exists: object, role_mark: object, owner: object
) -> None:
    """PlatformError when the role or database exists and is not this tenant's."""
    if role_exists and role_mark != mark:
        found = f"its comment is {role_mark!r}" if role_mark else "it carries no comment"
        raise PlatformError(
            f"PostgreSQL: role {name} exists but is not this tenant's ({found}, osp-ops "
            f"writes {mark!r}): refusing to adopt it; rename or drop it, or use another slug"
        )
    if owner is not None and owner != name:
        raise PlatformError(
            f"PostgreSQL: database {name} exists and belongs to {owner}, not to the tenant's "
            "role: refusing to adopt it; rename or drop it, or use another slug"
        )


def _close_shared(
    conn: psycopg.Connection[tuple[object, ...]], state: tuple[str, str] | None
) -> None:
    """REVOKE CONNECT on the server's shared databases (and the state DB, its user keeping
    it) from PUBLIC; nothing when already done."""
    names = [*SHARED_DATABASES, *([state[0]] if state else [])]
    open_ = conn.execute(
        "SELECT datname FROM pg_database WHERE datname = ANY(%s)"
        " AND has_database_privilege('public', datname, 'CONNECT')",
        (names,),
    ).fetchall()
    for (db,) in open_:
        if state is not None and db == state[0]:
            conn.execute(
                sql.SQL("GRANT CONNECT, TEMPORARY ON DATABASE {} TO {}").format(
                    sql.Identifier(state[0]), sql.Identifier(state[1])
                )
            )
        conn.execute(
            sql.SQL("REVOKE CONNECT, TEMPORARY ON DATABASE {} FROM PUBLIC").format(
                sql.Identifier(str(db))
            )
        )
