"""Smoke test of the postgres fixture: roles, databases, pg_dump/pg_restore."""

from __future__ import annotations

import subprocess

import psycopg
import pytest

from tests.fixtures.postgres import PostgresServer, pg_tool

pytestmark = [pytest.mark.infra, pytest.mark.integration]


def test_dump_restore_round_trip(
    postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    with psycopg.connect(postgres.dsn, autocommit=True) as conn:
        conn.execute("CREATE ROLE smoke_owner LOGIN PASSWORD 'smoke-pw'")
    src = postgres.create_database("smoke_src", owner="smoke_owner")
    owner_dsn = postgres.dsn_for("smoke_src", user="smoke_owner", password="smoke-pw")
    with psycopg.connect(owner_dsn) as conn:
        conn.execute("CREATE TABLE item (id serial PRIMARY KEY, body text NOT NULL)")
        conn.execute("INSERT INTO item (body) SELECT md5(g::text) FROM generate_series(1, 5000) g")
    dump = tmp_path_factory.mktemp("pgdump") / "smoke.dump"
    subprocess.run([pg_tool("pg_dump"), "-Fc", "-f", dump, "-d", src], check=True)
    dst = postgres.create_database("smoke_dst", owner="smoke_owner")
    subprocess.run(
        [pg_tool("pg_restore"), "--no-owner", "--role=smoke_owner", "-d", dst, dump],
        check=True,
    )
    counts = []
    for dsn in (src, dst):
        with psycopg.connect(dsn) as conn:
            row = conn.execute("SELECT count(*), sum(length(body)) FROM item").fetchone()
            counts.append(row)
    assert counts[0] == counts[1] == (5000, 5000 * 32)


def test_create_database_gives_fresh_databases(postgres: PostgresServer) -> None:
    a, b = postgres.create_database(), postgres.create_database()
    assert a != b
    with psycopg.connect(a) as conn:
        row = conn.execute("SELECT current_database(), current_user").fetchone()
    assert row is not None and row[1] == "postgres"
    assert postgres.dsn.startswith("postgresql://postgres:")
    assert (postgres.host, postgres.port) == ("127.0.0.1", postgres.port)
