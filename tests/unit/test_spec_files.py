"""Spec files: dump_spec/parse_spec round trip, and collisions across the fleet."""

from __future__ import annotations

from datetime import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from osp_ops.domain.catalog import PLATFORM_APP_KINDS, default_catalog
from osp_ops.domain.errors import SpecError
from osp_ops.domain.spec import TenantSpec, check_fleet, dump_spec, parse_spec, validate_spec
from osp_ops.store.specs import SpecRepository
from tests.factories import make_spec

pytestmark = pytest.mark.unit

CATALOG = default_catalog()
slugs = st.from_regex(r"\A[a-z][a-z0-9-]{0,20}[a-z0-9]\Z")
labels_ = st.from_regex(r"\A[a-z][a-z0-9]{0,8}\Z")
hostnames = st.lists(labels_, min_size=2, max_size=4).map(".".join)
locales = st.sampled_from(["fr", "en", "de", "pt-BR", "nl", "eu"])
apps = st.sampled_from(
    [(name, v.version) for name, app in CATALOG.apps.items() for v in app.versions]
)
names = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), min_size=1, max_size=40
).filter(str.strip)


@st.composite
def spec_data(draw: st.DrawFn) -> dict[str, object]:
    app, version = draw(apps)
    available = draw(st.lists(locales, min_size=1, max_size=3, unique=True))
    slug = draw(slugs)
    data: dict[str, object] = {
        "slug": slug,
        "name": draw(names),
        "app": {"name": app, "version": version},
        "hosts": {
            "primary": f"{slug}.example.org",
            "aliases": draw(st.lists(hostnames, max_size=2, unique=True)),
        },
        "admin": {"name": draw(names), "email": f"admin@{slug}.example.org"},
        "locales": {"default": draw(st.sampled_from(available)), "available": available},
        "plan": draw(st.sampled_from(["small", "medium", "large"])),
        "platform": draw(
            st.sampled_from([p for p in ({"kind": "hosts", "target": "web1"}, {"kind": "kubernetes"},
                                         {"kind": "kubernetes", "context": "prod"})
                             if CATALOG.apps[app].kind in PLATFORM_APP_KINDS[p["kind"]]])
        ),
        "time_zone": draw(st.sampled_from(["Europe/Paris", "UTC", "America/Montreal"])),
        "registration": draw(st.sampled_from(["open", "invitation", "closed"])),
        "backup": {
            "schedule": draw(st.sampled_from(["0 2 * * *", "*/15 * * * 1-5"])),
            "retention": {"daily": draw(st.integers(1, 30)), "yearly": draw(st.integers(0, 5))},
            "encrypt": draw(st.booleans()),
        },
        "maintenance_window": {
            "days": draw(st.lists(st.sampled_from(["mon", "sat", "sun"]), min_size=1, unique=True)),
            "start": draw(st.times()).replace(microsecond=0).isoformat(),
            "duration_minutes": draw(st.integers(15, 600)),
        },
        "contacts": [
            {"name": draw(names), "email": "dpo@example.org", "role": "dpo"}
        ] * draw(st.integers(0, 1)),
        "labels": draw(st.dictionaries(labels_, names, max_size=3)),
        "region": draw(st.sampled_from(["eu-west", "fr-idf"])),
    }  # fmt: skip
    return data


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec_data())
def test_dump_then_parse_is_the_same_spec(data: dict[str, object]) -> None:
    aliases = data["hosts"]["aliases"]  # type: ignore[index]
    if data["hosts"]["primary"] in aliases:  # type: ignore[index]
        return
    spec = validate_spec(data)
    text = dump_spec(spec)
    again = parse_spec(text, source="x.yaml", expected_slug=spec.slug)
    assert again == spec
    assert dump_spec(again) == text


def test_dump_leaves_defaults_out_and_keeps_reviewer_order() -> None:
    spec = validate_spec(
        {
            "slug": "lyon",
            "name": "Lyon",
            "app": {"name": "openslides", "version": "3.3"},
            "hosts": {"primary": "lyon.example.org"},
            "admin": {"name": "A", "email": "a@lyon.example.org"},
            "maintenance_window": {"start": "04:30"},
        }
    )
    text = dump_spec(spec)
    assert [line.split(":")[0] for line in text.splitlines() if not line.startswith(" ")] == [
        "slug", "name", "app", "hosts", "admin", "maintenance_window",
    ]  # fmt: skip
    assert "time_zone" not in text and "backup" not in text
    assert parse_spec(text).maintenance_window.start == time(4, 30)


def _spec(slug: str, primary: str, *aliases: str) -> TenantSpec:
    return make_spec(
        slug,
        app="openslides",
        name=slug,
        admin_name="A",
        admin_email=f"a@{slug}.example.org",
        hosts={"primary": primary, "aliases": list(aliases)},
    )


def test_fleet_without_collisions() -> None:
    assert (
        check_fleet({"a.yaml": _spec("a", "a.example.org"), "b.yaml": _spec("b", "b.example.org")})
        == []
    )


def test_fleet_slug_and_host_collisions_name_both_files() -> None:
    problems = check_fleet(
        {
            "tenants/a.yaml": _spec("a", "a.example.org", "shared.example.org"),
            "tenants/b.yaml": _spec("b", "b.example.org"),
            "tenants/c.yaml": _spec("c", "shared.example.org"),
            "tenants/a2.yaml": _spec("a", "a2.example.org", "B.example.org"),
        }
    )
    text = sorted(str(p) for p in problems)
    assert text == [
        "tenants/a2.yaml: hosts: host 'b.example.org' is also used by tenants/b.yaml",
        "tenants/a2.yaml: slug: 'a' is also used by tenants/a.yaml",
        "tenants/c.yaml: hosts: host 'shared.example.org' is also used by tenants/a.yaml",
    ]


def test_repository_reports_every_file_and_collision_at_once(tmp_path: Path) -> None:
    repo = SpecRepository(tmp_path, CATALOG)
    repo.write(_spec("a", "a.example.org"))
    repo.write(_spec("b", "a.example.org"))
    (tmp_path / "c.yaml").write_text("slug: c\nname: C\n")
    (tmp_path / "d.yaml").write_text(dump_spec(_spec("x", "x.example.org")))
    with pytest.raises(SpecError) as exc:
        repo.load_all()
    locations = sorted(p.location for p in exc.value.problems)
    assert f"{tmp_path}/b.yaml: hosts" in locations
    assert f"{tmp_path}/c.yaml: app" in locations
    assert f"{tmp_path}/d.yaml: slug" in locations
    with pytest.raises(SpecError, match="also used by"):
        repo.check_against_fleet(_spec("e", "e.example.org", "a.example.org"))
    (tmp_path / "b.yaml").unlink()
    repo.check_against_fleet(_spec("a", "a.example.org"))  # itself is no collision


def test_written_file_round_trips(tmp_path: Path) -> None:
    repo = SpecRepository(tmp_path, CATALOG)
    spec = _spec("lyon", "lyon.example.org", "www.lyon.example.org")
    path = repo.write(spec)
    assert path.read_text().startswith("# Tenant spec of lyon.")
    assert repo.load("lyon") == spec
    assert not list(tmp_path.glob(".*.tmp"))
