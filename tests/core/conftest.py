"""Core tests run on SQLite and on a real PostgreSQL (the session ``postgres`` fixture)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from osp_ops.store.db import Database


# The PostgreSQL case asks for ``postgres`` at run time: marked here, as the fixture
# would mark it (tests/fixtures/markers.py).
@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty state DB: a SQLite file, or a new database on the test cluster."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    postgres = request.getfixturevalue("postgres")
    return str(postgres.create_database())


@pytest.fixture
def db(state_url: str) -> Iterator[Database]:
    """The migrated state DB."""
    database = Database(state_url)
    yield database
    database.dispose()
