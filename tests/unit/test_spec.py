"""Tenant spec: validation messages name the file and the field; bad input never crashes."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from osp_ops.domain.errors import SpecError
from osp_ops.domain.spec import TenantSpec, parse_spec, validate_spec

pytestmark = pytest.mark.unit

SOURCE = "tenants/lyon.yaml"
TOP_FIELDS = set(TenantSpec.model_fields)


def valid() -> dict[str, Any]:
    return {
        "slug": "lyon",
        "name": "Ville de Lyon",
        "app": {"name": "decidim", "version": "0.28.5"},
        "hosts": {"primary": "lyon.example.org", "aliases": ["www.lyon.example.org"]},
        "admin": {"name": "Admin", "email": "admin@lyon.example.org"},
        "locales": {"default": "fr", "available": ["fr", "en"]},
        "platform": {"kind": "kubernetes", "context": "prod"},
        "backup": {"schedule": "0 3 * * *", "retention": {"daily": 3}},
        "maintenance_window": {"days": ["sat", "sun"], "start": "02:30"},
        "contacts": [{"name": "DSI", "email": "dsi@lyon.example.org", "role": "technical"}],
        "labels": {"department": "69"},
    }


def problems(data: Any, *, expected_slug: str | None = "lyon") -> dict[str, str]:
    """Problems of a spec as {field path: message}; fails if the spec is valid."""
    text = data if isinstance(data, str) else yaml.safe_dump(data)
    with pytest.raises(SpecError) as exc:
        parse_spec(text, source=SOURCE, expected_slug=expected_slug)
    out: dict[str, str] = {}
    for p in exc.value.problems:
        assert p.location.startswith(SOURCE), p
        loc = p.location.removeprefix(SOURCE).removeprefix(": ")
        out[loc] = f"{out[loc]} | {p.message}" if loc in out else p.message
    return out


def test_valid_spec_parses() -> None:
    spec = parse_spec(yaml.safe_dump(valid()), source=SOURCE, expected_slug="lyon")
    assert spec.slug == "lyon"
    assert spec.hosts.all == ("lyon.example.org", "www.lyon.example.org")
    assert spec.platform.kind == "kubernetes"


def test_every_problem_is_reported_at_once_with_its_field_path() -> None:
    data = valid()
    data["slug"] = "Lyon_"
    data["hosts"]["primary"] = "nodot"
    data["admin"]["email"] = "not-an-email"
    data["locales"] = {"default": "de", "available": ["fr"]}
    data["platform"]["bogus"] = 1
    data["backup"]["schedule"] = "every day"
    data["contacts"][0]["role"] = "boss"
    data["colour"] = "blue"
    found = problems(data)
    assert set(found) == {
        "slug",
        "hosts.primary",
        "admin.email",
        "locales",
        "platform.bogus",
        "backup.schedule",
        "contacts[0].role",
        "colour",
    }
    assert "DNS-1123" in found["slug"]
    assert "'Lyon_' does not match the file name 'lyon'" in found["slug"]
    assert found["colour"] == "unknown field (check its spelling)"
    assert found["platform.bogus"] == "unknown field (check its spelling)"
    assert "'de' is not in available" in found["locales"]
    assert "not a 5-field cron expression" in found["backup.schedule"]
    assert "'nodot' is not a fully qualified host name" in found["hosts.primary"]


def test_missing_fields_are_named() -> None:
    data = valid()
    del data["admin"], data["hosts"]
    assert problems(data) == {"admin": "Field required", "hosts": "Field required"}


def test_unknown_catalog_version_names_known_ones() -> None:
    data = valid()
    data["app"]["version"] = "0.30.0"
    found = problems(data)
    assert list(found) == ["app.version"]
    assert "0.30.0" in found["app.version"] and "0.29.2" in found["app.version"]


def test_unknown_app_is_refused() -> None:
    data = valid()
    data["app"] = {"name": "wordpress", "version": "6"}
    assert "app.name" in problems(data)


def test_slug_must_match_file_name() -> None:
    found = problems(valid(), expected_slug="paris")
    assert found == {"slug": "'lyon' does not match the file name 'paris'"}


@pytest.mark.parametrize(
    ("text", "needle"),
    [("a: [", "not valid YAML"), ("- a\n- b\n", "must be a YAML mapping"), ("", "mapping")],
)
def test_not_a_mapping_names_the_file(text: str, needle: str) -> None:
    with pytest.raises(SpecError) as exc:
        parse_spec(text, source=SOURCE)
    (p,) = exc.value.problems
    assert p.location == SOURCE and needle in p.message


@pytest.mark.parametrize(
    ("path", "value", "where"),
    [
        (("slug",), "a" * 31, "slug"),
        (("slug",), "9lives", "slug"),
        (("hosts", "aliases"), ["ok.example.org", "-bad.example.org"], "hosts.aliases[1]"),
        (("time_zone",), "Mars/Olympus", "time_zone"),
        (
            ("backup", "retention"),
            {"daily": 0, "weekly": 0, "monthly": 0, "yearly": 0},
            "backup.retention",
        ),
        (("backup", "retention", "daily"), -1, "backup.retention.daily"),
        (("maintenance_window", "duration_minutes"), 5, "maintenance_window.duration_minutes"),
        (("maintenance_window", "days"), ["someday"], "maintenance_window.days[0]"),
        (("labels",), {"Bad Key": "x"}, "labels"),
        (("plan",), "huge", "plan"),
        (("platform",), {"kind": "openstack"}, "platform"),
        (("platform", "target"), "", "platform.target"),
        (("locales", "available"), [], "locales.available"),
        (("registration",), "maybe", "registration"),
    ],
)
def test_field_problems_name_their_path(path: tuple[str, ...], value: Any, where: str) -> None:
    data = valid()
    if path[0] == "platform" and len(path) > 1 and path[1] == "target":
        data["platform"] = {"kind": "hosts"}
    node = data
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
    assert where in problems(data)


def test_hostnames_are_normalised() -> None:
    data = valid()
    data["hosts"]["primary"] = "Lyon.Example.ORG"
    assert validate_spec(data).hosts.primary == "lyon.example.org"


def test_spec_is_frozen() -> None:
    spec = validate_spec(valid())
    with pytest.raises(Exception, match="frozen"):
        spec.slug = "paris"  # type: ignore[misc]


# --- generated input: never a crash, always the file and a field path -----------------

json_leaf = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**40), 2**40), st.floats(allow_nan=False),
    st.text(max_size=30),
)  # fmt: skip
json_value = st.recursive(
    json_leaf,
    lambda kids: st.one_of(
        st.lists(kids, max_size=4), st.dictionaries(st.text(max_size=12), kids, max_size=4)
    ),
    max_leaves=12,
)


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(data, dict):
        for k, v in data.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            out += _paths(v, (*prefix, i))
    return out


PATHS = _paths(valid())


def _check_outcome(data: Any) -> None:
    try:
        spec = parse_spec(yaml.safe_dump(data), source=SOURCE)
    except SpecError as e:
        assert e.problems
        for p in e.problems:
            assert p.location.startswith(SOURCE), p
            assert p.message.strip(), p
            assert SOURCE in str(e)
    else:
        assert isinstance(spec, TenantSpec)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(sorted(TOP_FIELDS | {"x", ""})), json_value, max_size=8))
def test_generated_mappings_never_crash(data: dict[str, Any]) -> None:
    _check_outcome(data)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(PATHS), json_value)
def test_mutated_specs_report_the_mutated_field(path: tuple[Any, ...], value: Any) -> None:
    data = valid()
    node: Any = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    try:
        parse_spec(yaml.safe_dump(data), source=SOURCE)
    except SpecError as e:
        locations = [p.location.removeprefix(SOURCE).removeprefix(": ") for p in e.problems]
        assert all(loc for loc in locations), locations
        # The problem points at the mutated field or one of its parents.
        top = str(path[0])
        assert any(loc.split(".")[0].split("[")[0] == top for loc in locations), (path, locations)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_never_crashes(text: str) -> None:
    try:
        parse_spec(text, source=SOURCE)
    except SpecError as e:
        assert all(p.location.startswith(SOURCE) for p in e.problems)


def test_unknown_version_is_reported_with_other_problems() -> None:
    data = valid()
    data["app"]["version"] = "0.30.0"
    data["name"] = ""
    assert set(problems(data)) == {"app.version", "name"}


def test_a_host_name_listed_twice_is_refused() -> None:
    data = valid()
    data["hosts"]["aliases"] = ["LYON.example.org"]
    assert "listed twice" in problems(data)["hosts"]
