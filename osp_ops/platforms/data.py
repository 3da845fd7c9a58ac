"""Where a tenant's data is: the commands that dump it and the database admin that restores.

Platforms must not import the backup pipeline, so this module speaks in plain commands
(``Command``: argv + env); the engine wraps them in ``backups.CommandSource``. Passwords
travel in ``env`` (``PGPASSWORD``), never on argv.

- Kubernetes tenants (``SharedServerAccess``): the tenant database on the shared
  PostgreSQL server of ``settings.platform_db_admin_dsn``; ``pg_dump`` and ``psql`` run on
  the operator machine. Uploaded files are already in object storage: no files source.
- Hosts tenants: ``platforms/hosts/data.py`` (the same commands, started on the host).
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable
from urllib.parse import urlsplit, urlunsplit

from osp_ops.domain.errors import PlatformError
from osp_ops.domain.libpq import libpq_env
from osp_ops.domain.names import db_name_for
from osp_ops.domain.spec import TenantSpec

_TERMINATE = (
    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
    " WHERE datname = {} AND pid <> pg_backend_pid()"
)
_EXISTING = (
    "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND c.relname IN ({})"
)
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


@dataclass(frozen=True)
class Command:
    """A command to run: its argv and the environment it adds (secrets go here)."""

    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)


def ident(name: str) -> str:
    """A quoted SQL identifier; only plain lower-case names are accepted."""
    if not _NAME.match(name):
        raise PlatformError(f"refusing database name {name!r}")
    return f'"{name}"'


def literal(text: str) -> str:
    """A quoted SQL string literal (names only: never a secret)."""
    return "'" + text.replace("'", "''") + "'"


class DatabaseAdmin(Protocol):
    """Create, rename and drop databases of one tenant's server."""

    def list(self, pattern: str) -> list[str]:
        """Databases whose name matches the SQL LIKE ``pattern``."""
        ...

    def create(self, name: str, *, owner: str) -> None:
        """Create an empty database owned by ``owner`` (tenant role), connect revoked from PUBLIC."""
        ...

    def drop(self, name: str) -> None:
        """Drop the database if it exists (connections ended)."""
        ...

    def switch(self, *, current: str, new: str, retired: str) -> None:
        """Rename ``current`` to ``retired`` and ``new`` to ``current`` (connections ended)."""
        ...

    def restore_command(self, name: str, args: Sequence[str]) -> Command:
        """``pg_restore [args] -d name`` reading an archive on stdin (admin credentials)."""
        ...

    def row_counts(self, database: str, tables: Sequence[str]) -> dict[str, int]:
        """Rows of each existing table of ``tables`` (schema public)."""
        ...

    def versions(self) -> dict[str, str]:
        """``server`` and ``pg_dump`` versions for the manifest (missing ones left out)."""
        ...

    def exported_snapshot(self, database: str) -> contextlib.AbstractContextManager[Snapshot]:
        """A read-only transaction on ``database`` whose snapshot ``pg_dump --snapshot`` uses."""
        ...


class Snapshot(Protocol):
    """An open transaction whose snapshot was exported (``pg_export_snapshot()``)."""

    id: str

    def row_counts(self, tables: Sequence[str]) -> dict[str, int]:
        """Row counts in the snapshot: what a ``pg_dump --snapshot=<id>`` holds."""
        ...


@runtime_checkable
class BackupAccess(Protocol):
    """How the backup operations reach a tenant's data on its platform."""

    def database_name(self, spec: TenantSpec) -> str:
        """The tenant's database name (what the app connects to)."""
        ...

    def dump_command(
        self, spec: TenantSpec, secrets: Mapping[str, str], *, snapshot: str | None = None
    ) -> Command:
        """``pg_dump -Fc -Z0 [--snapshot=ID]`` of the tenant's database, writing to stdout."""
        ...

    def files_command(self, spec: TenantSpec) -> Command | None:
        """A tar of the uploaded files on stdout, or None (no local files)."""
        ...

    def database_admin(self, spec: TenantSpec) -> DatabaseAdmin:
        """The admin of the server that holds the tenant's database."""
        ...


@runtime_checkable
class FilesAccess(Protocol):
    """Uploaded files kept beside the app (hosts): restored next to them, then switched.

    ``name`` is a directory beside the live one (``media.restore-<ts>``, ``media.old-<ts>``,
    ``media.drill-<hex>``); the live directory is never written by a restore.
    """

    def files_restore_command(self, spec: TenantSpec, name: str) -> Command:
        """A command that empties or creates ``name`` and extracts a tar from stdin into it."""
        ...

    def switch_files(self, spec: TenantSpec, *, new: str, retired: str) -> None:
        """Live directory -> ``retired``, ``new`` -> live (safe to rerun)."""
        ...

    def list_files(self, spec: TenantSpec, pattern: str) -> list[str]:
        """Directories beside the live one whose name matches the shell ``pattern``."""
        ...

    def drop_files(self, spec: TenantSpec, name: str) -> None:
        """Remove the directory ``name`` beside the live one (if present)."""
        ...


def with_database(dsn: str, name: str) -> str:
    """The same DSN naming another database."""
    p = urlsplit(dsn)
    return urlunsplit((p.scheme, p.netloc, "/" + name, p.query, p.fragment))


@dataclass
class PsqlAdmin:
    """SQL is composed with ``ident``/``literal`` from checked names, never secrets.

    A ``DatabaseAdmin`` that runs ``psql`` (locally, or behind an ssh/runuser prefix).

    ``psql``: the argv that starts psql connected as a superuser to the maintenance
    database, without ``-d``; ``env``: its environment (``PGPASSWORD``).
    """

    psql: tuple[str, ...]
    env: Mapping[str, str]
    pg_restore: tuple[str, ...] = ("pg_restore",)  # the same connection options as psql
    pg_dump: tuple[str, ...] = ("pg_dump",)  # no options: only asked for its version
    maintenance_db: str = "postgres"
    timeout: float = 300.0
    # Wraps the whole psql argv (e.g. into an ssh remote command); None runs it here.
    wrap: Callable[[Sequence[str]], Sequence[str]] | None = None

    def _argv(self, database: str, *args: str) -> Sequence[str]:
        """psql on ``database``, quiet and unaligned, stopping at the first error."""
        argv = [*self.psql, "-X", "-q", "-A", "-t", "--no-password", "-v", "ON_ERROR_STOP=1"]
        argv += ["-d", database, *args]
        return self.wrap(argv) if self.wrap is not None else argv

    def _run(self, sql: Sequence[str], *, database: str | None = None) -> list[str]:
        commands = [arg for statement in sql for arg in ("-c", statement)]
        argv = self._argv(database or self.maintenance_db, *commands)
        try:
            proc = subprocess.run(
                argv,
                env={**os.environ, **self.env},
                capture_output=True,
                text=True,
                timeout=self.timeout,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as e:
            raise PlatformError(f"psql failed: {e}") from e
        if proc.returncode != 0:
            raise PlatformError(f"psql failed: {proc.stderr.strip()[-500:]}")
        return [line for line in proc.stdout.splitlines() if line.strip()]

    def list(self, pattern: str) -> list[str]:
        """Databases matching the LIKE pattern, sorted."""
        return sorted(
            self._run([f"SELECT datname FROM pg_database WHERE datname LIKE {literal(pattern)}"])  # noqa: S608
        )

    def create(self, name: str, *, owner: str) -> None:
        """Create the database (the tenant role owns it; only it may connect)."""
        self._run(
            [
                f"CREATE DATABASE {ident(name)} OWNER {ident(owner)} "
                "ENCODING 'UTF8' TEMPLATE template0",
                f"REVOKE ALL ON DATABASE {ident(name)} FROM PUBLIC",
                f"GRANT CONNECT, TEMPORARY ON DATABASE {ident(name)} TO {ident(owner)}",
            ]
        )

    def drop(self, name: str) -> None:
        """Drop if present."""
        self._run([f"DROP DATABASE IF EXISTS {ident(name)} WITH (FORCE)"])

    def switch(self, *, current: str, new: str, retired: str) -> None:
        """Refuse connections to ``current``, end them, rename both (safe to rerun)."""
        present = set(self.list("%"))
        if new not in present and retired in present and current in present:
            return  # already switched
        if new not in present:
            raise PlatformError(f"restored database {new} is missing; nothing switched")
        steps = []
        if current in present:
            steps += [
                f"ALTER DATABASE {ident(current)} ALLOW_CONNECTIONS false",
                _TERMINATE.format(literal(current)),
                f"ALTER DATABASE {ident(current)} RENAME TO {ident(retired)}",
            ]
        steps.append(f"ALTER DATABASE {ident(new)} RENAME TO {ident(current)}")
        if current in present:  # the retired copy stays readable for inspection
            steps.append(f"ALTER DATABASE {ident(retired)} ALLOW_CONNECTIONS true")
        self._run(steps)

    def restore_command(self, name: str, args: Sequence[str]) -> Command:
        """pg_restore into ``name`` where psql runs (here, or on the host)."""
        argv: Sequence[str] = [*self.pg_restore, "--no-password", *args, "-d", name]
        if self.wrap is not None:
            argv = self.wrap(argv)
        return Command(tuple(argv), {k: v for k, v in self.env.items() if k != "PGDATABASE"})

    def versions(self) -> dict[str, str]:
        """The server's version (SHOW server_version) and ``pg_dump --version``."""
        out: dict[str, str] = {}
        with contextlib.suppress(PlatformError, IndexError):
            out["server"] = self._run(["SHOW server_version"])[0].strip()
        argv: Sequence[str] = [*self.pg_dump, "--version"]
        if self.wrap is not None:
            argv = self.wrap(argv)
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            proc = subprocess.run(
                argv, capture_output=True, text=True, timeout=60, check=True,
                env={**os.environ, **self.env},
            )  # fmt: skip
            out["pg_dump"] = proc.stdout.strip()
        return out

    def row_counts(self, database: str, tables: Sequence[str]) -> dict[str, int]:
        """Row counts of the tables that exist."""
        return count_rows(lambda sql: self._run([sql], database=database), tables)

    @contextlib.contextmanager
    def exported_snapshot(self, database: str) -> Iterator[Snapshot]:
        """psql kept open in ``BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY``."""
        session = PsqlSession(self._argv(database), {**os.environ, **self.env}, self.timeout)
        try:
            session.query("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            snapshot_id = session.query("SELECT pg_export_snapshot()")[0].strip()
            yield PsqlSnapshot(snapshot_id, session)
        finally:
            session.close()


def count_rows(run: Callable[[str], list[str]], tables: Sequence[str]) -> dict[str, int]:
    """Row counts of those of ``tables`` that exist (schema public); ``run`` runs one query."""
    if not tables:
        return {}
    present = run(_EXISTING.format(", ".join(literal(t) for t in tables)))
    found = [t for t in tables if t in present]
    if not found:
        return {}
    counts = [f"(SELECT count(*) FROM public.{ident(t)})" for t in found]  # noqa: S608
    row = run("SELECT " + ", ".join(counts))[0].split("|")
    return {t: int(n) for t, n in zip(found, row, strict=True)}


_END = "__osp_ops_end__"


class PsqlSession:
    """One psql process fed queries on stdin, so that a transaction stays open."""

    def __init__(self, argv: Sequence[str], env: Mapping[str, str], timeout: float) -> None:
        self.timeout = timeout
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed in close())
        self._lock = threading.Lock()
        try:
            self.proc = subprocess.Popen(
                list(argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=self._stderr, env=dict(env), text=True, start_new_session=True,
            )  # fmt: skip
        except OSError as e:
            self._stderr.close()
            raise PlatformError(f"psql failed: {e}") from e

    def _error(self) -> PlatformError:
        self._stderr.seek(0)
        return PlatformError(f"psql failed: {self._stderr.read().decode(errors='replace')[-500:]}")

    def query(self, sql: str) -> list[str]:
        """Run one statement; its output lines (ON_ERROR_STOP: an error ends psql)."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        with self._lock:
            try:
                self.proc.stdin.write(f"{sql};\n\\echo {_END}\n")
                self.proc.stdin.flush()
                lines: list[str] = []
                for line in self.proc.stdout:
                    if line.rstrip("\n") == _END:
                        return [x for x in lines if x.strip()]
                    lines.append(line.rstrip("\n"))
            except (OSError, ValueError) as e:
                raise self._error() from e
            raise self._error()

    def close(self) -> None:
        """End the transaction (ROLLBACK) and psql."""
        with contextlib.suppress(OSError, ValueError):
            if self.proc.stdin is not None:
                self.proc.stdin.write("ROLLBACK;\n\\q\n")
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._stderr.close()


@dataclass
class PsqlSnapshot:
    """The exported snapshot of a ``PsqlSession``'s transaction."""

    id: str
    session: PsqlSession

    def row_counts(self, tables: Sequence[str]) -> dict[str, int]:
        """Row counts in this transaction's snapshot."""
        return count_rows(self.session.query, tables)


@dataclass
class SharedServerAccess:
    """Kubernetes tenants: their database on the shared server of the admin DSN."""

    admin_dsn: str
    bin_dir: Path | None = None

    def _tool(self, name: str) -> str:
        return str(self.bin_dir / name) if self.bin_dir else name

    def database_name(self, spec: TenantSpec) -> str:
        """``osp_<slug>``."""
        return db_name_for(spec.slug)

    def dump_command(
        self, spec: TenantSpec, secrets: Mapping[str, str], *, snapshot: str | None = None
    ) -> Command:
        """pg_dump here, as the admin, of the tenant's database (password in env)."""
        env = libpq_env(with_database(self.admin_dsn, db_name_for(spec.slug)))
        argv = [self._tool("pg_dump"), "--no-password", "-Fc", "-Z0"]
        if snapshot:
            argv.append(f"--snapshot={snapshot}")
        return Command(tuple(argv), env)

    def files_command(self, spec: TenantSpec) -> Command | None:
        """None: Kubernetes tenants keep uploads in object storage, not backed up here."""
        return None

    def database_admin(self, spec: TenantSpec) -> DatabaseAdmin:
        """psql here with the admin credentials."""
        env = libpq_env(self.admin_dsn)
        maintenance = env.pop("PGDATABASE", "postgres")
        return PsqlAdmin(
            psql=(self._tool("psql"),),
            env=env,
            pg_restore=(self._tool("pg_restore"),),
            pg_dump=(self._tool("pg_dump"),),
            maintenance_db=maintenance,
        )
