"""Tenant databases on the shared PostgreSQL server of Kubernetes tenants (psycopg).

One role and one database per tenant, both named ``osp_<slug>`` (dashes as
underscores), managed through ``TenantDatabases`` (one admin connection, reused). The role owns its database; ``CONNECT`` is revoked from PUBLIC so no other
tenant's role can even connect. Every function is idempotent. Passwords are sent as SQL
literals composed client-side (utility statements take no bind parameters) and never
logged; errors are reported without the statement text.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

import psycopg
from psycopg import sql

from osp_ops.domain.errors import ConfigError, PlatformError, TemporaryError
from osp_ops.domain.names import db_name_for


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


class TenantDatabases:
    """Tenant roles and databases over one reused admin connection (thread-safe)."""

    def __init__(self, admin_dsn: str) -> None:
        self._dsn = admin_dsn
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

    def ensure(self, slug: str, password: str, *, set_password: bool = True) -> bool:
        """Create (or fix) the tenant's role and database; True when something was created.

        One query reads the state; statements run only for what is missing or wrong, so
        a converged tenant costs no write. The password is set when the role is created
        and when ``set_password`` (a rotated ``db_password``).
        """
        name = db_name_for(slug)
        ident = sql.Identifier(name)
        created = False
        with self._lock:
            try:
                conn = self._connection()
                row = conn.execute(
                    "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = %s),"
                    " (SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s),"
                    " (SELECT has_database_privilege('public', datname, 'CONNECT')"
                    "  FROM pg_database WHERE datname = %s)",
                    (name, name, name),
                ).fetchone()
                assert row is not None
                role_exists, owner, public_connect = row
                if not role_exists:
                    conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(ident))
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
                    created = True
                elif owner != name:
                    conn.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(ident, ident))
                if owner is None or public_connect:
                    conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(ident))
                    conn.execute(
                        sql.SQL("GRANT CONNECT, TEMPORARY ON DATABASE {} TO {}").format(
                            ident, ident
                        )
                    )
            except psycopg.Error as e:
                raise _failed("set up", name, e) from e
        return created

    def drop(self, slug: str) -> bool:
        """Drop the tenant's databases and role (connections are ended); True if one existed.

        The tenant's databases are its own and those restores and drills left beside it
        (``<db>_old_<ts>``, ``<db>_r<ts>``, ``<db>_drill_<hex>``, owned by its role):
        deleting the tenant is the operator's confirmation that they may go too.
        """
        name = db_name_for(slug)
        ident = sql.Identifier(name)
        with self._lock:
            try:
                conn = self._connection()
                databases = [
                    str(r[0])
                    for r in conn.execute(
                        "SELECT datname FROM pg_database WHERE datname = %s OR (starts_with(datname, %s)"
                        " AND datdba = (SELECT oid FROM pg_roles WHERE rolname = %s))",
                        (name, name + "_", name),
                    ).fetchall()
                ]
                role = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,))
                role_exists = role.fetchone() is not None
                for db in sorted(databases, key=lambda d: d != name):
                    drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                    conn.execute(drop.format(sql.Identifier(db)))
                if role_exists:
                    conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(ident))
            except psycopg.Error as e:
                raise _failed("drop", name, e) from e
        return bool(databases) or role_exists
