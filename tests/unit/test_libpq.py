"""libpq_env: a DSN read as libpq reads it, the password in the environment only."""

from __future__ import annotations

import pytest

from osp_ops.domain.errors import ConfigError
from osp_ops.domain.libpq import libpq_env

pytestmark = pytest.mark.unit


def test_every_part_decoded() -> None:
    env = libpq_env("postgresql://app%40x:p%3Ass@db.example:5433/decidim?sslmode=require")
    assert env == {
        "PGDATABASE": "decidim", "PGHOST": "db.example", "PGPORT": "5433",
        "PGUSER": "app@x", "PGPASSWORD": "p:ss", "PGSSLMODE": "require",
    }  # fmt: skip


def test_what_the_dsn_leaves_out_is_left_to_libpq() -> None:
    # No port: libpq's default (or the caller's PGPORT), not a forced 5432.
    assert libpq_env("postgres://db.example") == {"PGHOST": "db.example", "PGDATABASE": "postgres"}
    assert libpq_env("postgresql:///osp_x") == {"PGDATABASE": "osp_x"}
    assert libpq_env("postgresql://u@h/d") == {"PGHOST": "h", "PGUSER": "u", "PGDATABASE": "d"}


def test_empty_password_is_kept() -> None:
    assert libpq_env("postgresql://u:@h/d")["PGPASSWORD"] == ""


def test_password_with_unencoded_at_and_colon() -> None:
    env = libpq_env("postgresql://u:p@s:s@h/d")
    assert (env["PGUSER"], env["PGPASSWORD"], env["PGHOST"]) == ("u", "p@s:s", "h")


def test_socket_directory_and_case_kept() -> None:
    assert libpq_env("postgresql://%2Fvar%2Frun%2FPG/d")["PGHOST"] == "/var/run/PG"
    env = libpq_env("postgresql:///d?host=/run/postgresql&port=5499")
    assert (env["PGHOST"], env["PGPORT"]) == ("/run/postgresql", "5499")


def test_several_hosts_and_ipv6() -> None:
    env = libpq_env("postgresql://h1:5432,[::1]:5433,h3/d")
    assert (env["PGHOST"], env["PGPORT"]) == ("h1,::1,h3", "5432,5433,")
    assert "PGPORT" not in libpq_env("postgresql://[2001:db8::1]/d")


def test_query_keywords_win_unknown_and_empty_ignored() -> None:
    env = libpq_env(
        "postgresql://u@h/d?dbname=other&application_name=osp%20ops&connect_timeout=5"
        "&sslmode=&foo=bar&sslrootcert=%2Fetc%2Fca.pem"
    )
    assert env == {
        "PGHOST": "h", "PGUSER": "u", "PGDATABASE": "other", "PGAPPNAME": "osp ops",
        "PGCONNECT_TIMEOUT": "5", "PGSSLROOTCERT": "/etc/ca.pem",
    }  # fmt: skip


@pytest.mark.parametrize(
    "dsn", ["mysql://u:secret@h/d", "u:secret@h/d", "postgresql://u:secret@h:port/d"]
)
def test_refused_without_naming_the_dsn(dsn: str) -> None:
    with pytest.raises(ConfigError) as e:
        libpq_env(dsn)
    assert "secret" not in str(e.value)
