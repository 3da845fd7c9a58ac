"""libpq environment variables from a ``postgresql://`` DSN, so that no argv carries a password.

``pg_dump``, ``pg_restore`` and ``psql`` are started with ``PGHOST``, ``PGUSER``,
``PGPASSWORD``... in their environment instead of the DSN on their command line. The
variables say what the DSN says, read as libpq reads a URI
(https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-CONNSTRING-URIS):

- every part is percent-decoded (``%40`` in a user name, ``%2F`` in a socket directory);
- several hosts (``h1:5432,h2:5433``) give ``PGHOST=h1,h2`` and ``PGPORT=5432,5433``;
  ``[::1]`` is an IPv6 address; a host name keeps its case (a socket directory is a path);
- what the DSN leaves out is left out, so libpq's defaults apply, except the database:
  ``postgres`` (the maintenance database) when the DSN names none;
- an empty password (``user:@host``) is passed as such, so no ``PGPASSWORD`` of the
  caller's environment replaces it;
- query parameters that are libpq keywords (``sslmode``, ``host`` for a socket
  directory, ``connect_timeout``...) become their variables and win over the URI's
  parts, as in libpq; other parameters are ignored, as are empty values.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from osp_ops.domain.errors import ConfigError

DEFAULT_DATABASE = "postgres"
_KEYWORDS = {
    "host": "PGHOST",
    "hostaddr": "PGHOSTADDR",
    "port": "PGPORT",
    "dbname": "PGDATABASE",
    "user": "PGUSER",
    "password": "PGPASSWORD",
    "passfile": "PGPASSFILE",
    "options": "PGOPTIONS",
    "application_name": "PGAPPNAME",
    "connect_timeout": "PGCONNECT_TIMEOUT",
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "sslcrl": "PGSSLCRL",
    "gssencmode": "PGGSSENCMODE",
    "channel_binding": "PGCHANNELBINDING",
    "target_session_attrs": "PGTARGETSESSIONATTRS",
}


def libpq_env(dsn: str) -> dict[str, str]:
    """The libpq variables of a ``postgresql://user:pw@host:port/db?sslmode=...`` DSN.

    ConfigError (naming no part of the DSN: it may hold a password) if it is not a
    ``postgresql://`` or ``postgres://`` URL or a port is not a number.
    """
    parts = urlsplit(dsn)
    if parts.scheme not in ("postgresql", "postgres"):
        raise ConfigError("the database DSN must be a postgresql:// URL")
    userinfo, _, hostlist = parts.netloc.rpartition("@")
    env: dict[str, str] = {}
    hosts, ports = _hosts(hostlist)
    if any(hosts):
        env["PGHOST"] = ",".join(hosts)
    if any(ports):
        env["PGPORT"] = ",".join(ports)
    if userinfo:
        user, colon, password = userinfo.partition(":")
        if user:
            env["PGUSER"] = unquote(user)
        if colon:
            env["PGPASSWORD"] = unquote(password)
    env["PGDATABASE"] = unquote(parts.path.lstrip("/")) or DEFAULT_DATABASE
    for pair in parts.query.split("&"):
        key, _, value = pair.partition("=")
        name = _KEYWORDS.get(unquote(key))
        if name and value:
            env[name] = unquote(value)
    return env


def _hosts(hostlist: str) -> tuple[list[str], list[str]]:
    """(hosts, ports) of ``h1:5432,[::1]:5433,...``, decoded; empty strings where omitted."""
    hosts, ports = [], []
    for item in hostlist.split(","):
        if item.startswith("["):
            host, _, rest = item[1:].partition("]")
            port = rest.removeprefix(":")
        else:
            host, _, port = item.partition(":")
        if port and not port.isdigit():
            raise ConfigError("the database DSN has a port that is not a number")
        hosts.append(unquote(host))
        ports.append(port)
    return hosts, ports
