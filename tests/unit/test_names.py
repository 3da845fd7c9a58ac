"""Tenant names come from one function; slugs whose names osp-ops or the platform own
are refused by spec validation, naming the slug field; duplicated YAML keys are refused."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from pydantic import SecretStr

from osp_ops.domain.errors import SpecError
from osp_ops.domain.names import reserved_problems, tenant_names
from osp_ops.domain.spec import parse_spec, validate_spec
from osp_ops.settings import Settings
from tests.factories import spec_data

pytestmark = pytest.mark.unit


def _ville(slug: str) -> dict[str, Any]:
    """A spec whose other fields do not depend on the slug under test."""
    return spec_data(
        slug,
        app="openslides",
        name="Ville",
        host="ville.example.org",
        admin_email="admin@ville.example.org",
    )


def test_every_name_of_a_tenant() -> None:
    n = tenant_names("saint-denis")
    assert (n.database, n.role, n.namespace) == ("osp_saint_denis",) * 2 + ("osp-saint-denis",)
    assert (n.unix_user, n.directory, n.service) == (
        "osp-saint-denis",
        "saint-denis",
        "osp-ops-app-saint-denis",
    )
    assert n.bucket() == "osp-saint-denis"
    assert n.bucket("media-") == "media-saint-denis"


def test_unix_user_fits_useradd_and_stays_distinct() -> None:
    a, b = "a" * 29 + "x", "a" * 29 + "y"
    ua, ub = tenant_names(a).unix_user, tenant_names(b).unix_user
    assert len(ua) <= 32 and len(ub) <= 32 and ua != ub


@pytest.mark.parametrize(
    ("slug", "taken"),
    [
        ("ops", "database 'osp_ops'"),  # the state DB of the dev stack and the tests
        ("ops-system", "namespace 'osp-ops-system'"),  # the operator's namespace
        ("ops-backups", "the prefix 'ops'"),
        ("venvs", "directory 'venvs'"),  # the hosts' shared virtualenvs
    ],
)
def test_reserved_slug_is_refused_by_spec_validation(slug: str, taken: str) -> None:
    with pytest.raises(SpecError) as exc:
        validate_spec(_ville(slug), source="tenants/x.yaml")
    (problem,) = exc.value.problems
    assert problem.location == "tenants/x.yaml: slug"
    assert taken in problem.message and "reserved" in problem.message


def test_settings_add_the_state_db_the_admin_db_and_the_backup_bucket() -> None:
    s = Settings(
        state_url="postgresql+psycopg://osp:pw@db:5432/osp_control",
        platform_db_admin_dsn=SecretStr("host=db dbname=osp_admin user=postgres"),
        backup_url="s3://osp-backups/prod",
    )
    assert "database 'osp_control'" in s.reserved_problems("control")[0]
    assert "database 'osp_admin'" in s.reserved_problems("admin")[0]
    assert "bucket 'osp-backups'" in s.reserved_problems("backups")[0]
    assert s.reserved_problems("nanterre") == []
    assert Settings().reserved_problems("control") == []


def test_ordinary_slugs_are_not_reserved() -> None:
    for slug in ("nanterre", "saint-denis", "opsville", "kube", "default"):
        assert reserved_problems(slug) == [], slug


def test_duplicate_key_is_refused_naming_key_and_line() -> None:
    text = yaml.safe_dump(_ville("lyon"), sort_keys=False) + "plan: small\nplan: large\n"
    with pytest.raises(SpecError) as exc:
        parse_spec(text, source="tenants/lyon.yaml", expected_slug="lyon")
    (problem,) = exc.value.problems
    assert problem.location == "tenants/lyon.yaml: plan"
    lines = text.splitlines()
    assert f"line {lines.index('plan: large') + 1}" in problem.message
    assert f"first at line {lines.index('plan: small') + 1}" in problem.message


def test_nested_duplicate_key_names_its_path() -> None:
    text = (
        "slug: lyon\nname: Lyon\napp: {name: openslides, version: '3.3'}\n"
        "hosts: {primary: lyon.example.org}\n"
        "admin:\n  name: A\n  email: a@lyon.example.org\n  name: B\n"
    )
    with pytest.raises(SpecError) as exc:
        parse_spec(text, source="s.yaml")
    assert [p.location for p in exc.value.problems] == ["s.yaml: admin.name"]
    assert "line 8" in exc.value.problems[0].message


def test_merge_keys_still_parse() -> None:
    text = (
        "slug: lyon\nname: Lyon\napp: {name: openslides, version: '3.3'}\n"
        "hosts: {primary: lyon.example.org}\n"
        "admin: &a {name: A, email: a@lyon.example.org}\n"
        "contacts:\n  - <<: *a\n    role: dpo\n"
    )
    assert parse_spec(text, source="s.yaml").contacts[0].role == "dpo"
