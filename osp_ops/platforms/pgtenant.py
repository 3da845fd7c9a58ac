"""Tenant databases on the shared PostgreSQL server of Kubernetes tenants (psycopg).

One role and one database per tenant, both named ``osp_<slug>`` (dashes as
underscores). The role owns its database; ``CONNECT`` is revoked from PUBLIC so no other
tenant's role can even connect. Every function is idempotent. Passwords are sent as SQL
literals composed client-side (utility statements take no bind parameters) and never
logged; errors are reported without the statement text.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, urlsplit

import psycopg
from psycopg import sql

from osp_ops.domain.errors import ConfigError, PlatformError, TemporaryError


def db_name_for(slug: str) -> str:
    """Role and database name of a tenant."""
    return "osp_" + slug.replace("-", "_")


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


def ensure_tenant_database(
    admin_dsn: str, slug: str, password: str, *, set_password: bool = True
) -> bool:
    """Create (or update) the tenant's role and database; True when something was created.

    The password is set when the role is created and when ``set_password`` (a rotated
    ``db_password``: the caller knows the tenant's Secret is about to change).
    """
    name = db_name_for(slug)
    ident = sql.Identifier(name)
    created = False
    try:
        with _connect(admin_dsn) as conn:
            if (
                conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone()
                is None
            ):
                conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(ident))
                created = True
                set_password = True
            if set_password:
                conn.execute(
                    sql.SQL(
                        "ALTER ROLE {} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {}"
                    ).format(ident, sql.Literal(password))
                )
            if (
                conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
                is None
            ):
                conn.execute(
                    sql.SQL(
                        "CREATE DATABASE {} OWNER {} ENCODING 'UTF8' TEMPLATE template0"
                    ).format(ident, ident)
                )
                created = True
            conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(ident))
            conn.execute(
                sql.SQL("GRANT CONNECT, TEMPORARY ON DATABASE {} TO {}").format(ident, ident)
            )
    except psycopg.Error as e:
        raise PlatformError(
            f"PostgreSQL: cannot set up database {name}: {type(e).__name__}: "
            f"{(e.diag.message_primary if e.diag else None) or 'error'}"
        ) from e
    return created


def drop_tenant_database(admin_dsn: str, slug: str) -> bool:
    """Drop the tenant's database and role (connections are ended); True when one existed."""
    name = db_name_for(slug)
    ident = sql.Identifier(name)
    try:
        with _connect(admin_dsn) as conn:
            existed = (
                conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
                is not None
            )
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
            role = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone()
            if role is not None:
                existed = True
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(ident))
    except psycopg.Error as e:
        raise PlatformError(
            f"PostgreSQL: cannot drop database {name}: {type(e).__name__}: "
            f"{(e.diag.message_primary if e.diag else None) or 'error'}"
        ) from e
    return existed
