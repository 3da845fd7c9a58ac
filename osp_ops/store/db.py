"""The state DB: engine creation, schema migrations, transactions.

SQLite (the embedded default) runs in WAL mode and every transaction starts with
``BEGIN IMMEDIATE``, so read-then-write sequences (leases, audit appends, claims) are
serialized across processes. PostgreSQL uses row locks where it matters.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from osp_ops.domain.errors import ConfigError, TemporaryError

if TYPE_CHECKING:
    from alembic.config import Config

# The newest migration (store/migrations/versions). A state DB at this revision opens
# without importing alembic (~11 MiB and 0.2 s in every CLI process); a test checks
# that it is alembic's head.
HEAD_REVISION = "0006"


def utcnow() -> datetime:
    """Now, timezone-aware UTC."""
    return datetime.now(UTC)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # let the "begin" hook issue BEGIN IMMEDIATE
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def make_engine(url: str) -> Engine:
    """An Engine for ``url``; the SQLite file's directory is created if needed."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    try:
        if url.startswith("sqlite:///"):
            path = Path(url.removeprefix("sqlite:///"))
            path.parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(url, connect_args={"timeout": 30})
            event.listen(engine, "connect", _sqlite_pragmas)

            @event.listens_for(engine, "begin")
            def _begin(conn: Any) -> None:
                conn.exec_driver_sql("BEGIN IMMEDIATE")

            return engine
        return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)
    except (SQLAlchemyError, ValueError) as e:
        raise ConfigError(f"cannot use state DB URL: {e}") from e


def _alembic_config(engine: Engine) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option(
        "script_location", str(resources.files("osp_ops.store").joinpath("migrations"))
    )
    cfg.attributes["engine"] = engine
    return cfg


def current_revision(engine: Engine) -> str | None:
    """The state DB's migration revision (None for an empty database)."""
    with engine.connect() as conn:
        if not engine.dialect.has_table(conn, "alembic_version"):
            return None
        row = conn.execute(text("SELECT version_num FROM alembic_version")).first()
        return str(row[0]) if row else None


def ensure_schema(engine: Engine) -> None:
    """Bring the schema to the newest migration (fast no-op when current)."""
    try:
        if current_revision(engine) == HEAD_REVISION:
            return
        from alembic import command

        command.upgrade(_alembic_config(engine), "head")
    except OperationalError as e:
        raise TemporaryError(f"state DB unreachable: {e.orig}") from e


def alembic_head(engine: Engine) -> str | None:
    """The head revision of the migration scripts (for the test of ``HEAD_REVISION``)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config(engine)).get_current_head()


class Database:
    """The state DB: an engine plus a session factory."""

    def __init__(self, url: str, *, migrate: bool = True) -> None:
        self.url = url
        self.engine = make_engine(url)
        if migrate:
            ensure_schema(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def is_postgresql(self) -> bool:
        """True on PostgreSQL (row locks and SKIP LOCKED are available)."""
        return self.engine.dialect.name == "postgresql"

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on error."""
        with self._sessions() as session, session.begin():
            yield session

    def dispose(self) -> None:
        """Close pooled connections."""
        self.engine.dispose()
