"""The app catalog: upgrade paths follow the data, never skip a Decidim minor, never go back."""

from __future__ import annotations

import itertools
import re

import pytest
import yaml

from osp_ops.domain.catalog import default_catalog, parse_catalog
from osp_ops.domain.errors import CatalogError

pytestmark = pytest.mark.unit

CATALOG = default_catalog()
DECIDIM = CATALOG.app("decidim")
OPENSLIDES = CATALOG.app("openslides")


def _key(version: str) -> tuple[int, ...]:
    return tuple(int(x) for x in version.split("."))


def _minor(version: str) -> tuple[int, int]:
    major, minor = _key(version)[:2]
    return major, minor


def test_openslides_32_to_33() -> None:
    assert OPENSLIDES.upgrade_path("3.2", "3.3") == ["3.3"]
    assert OPENSLIDES.upgrade_path("3.3", "3.3") == []


def test_decidim_walks_every_minor() -> None:
    assert DECIDIM.upgrade_path("0.27.6", "0.29.2") == ["0.27.7", "0.28.4", "0.28.6", "0.29.2"]
    assert DECIDIM.upgrade_path("0.27.7", "0.28.5") == ["0.28.4", "0.28.5"]
    # Up to the current release, through the last patch of every minor.
    assert DECIDIM.upgrade_path("0.27.7", "0.32.2") == [
        "0.28.4", "0.28.6", "0.29.2", "0.29.7", "0.30.6", "0.31.6", "0.32.0", "0.32.2",
    ]  # fmt: skip
    assert DECIDIM.latest.version == "0.32.2"
    assert DECIDIM.image_ref("0.32.2") == "ghcr.io/decidim/decidim:0.32.2"


def _commands(origin: str, version: str) -> list[str]:
    return [t.command[-1] for t in DECIDIM.hop_tasks(origin, version)]


def test_each_hop_carries_the_one_time_tasks_of_the_releases_it_enters() -> None:
    """A task belongs to the release that introduced it and runs on the hop that enters it."""
    assert _commands("0.27.7", "0.28.4")[0] == "decidim:upgrade:migrate_wysiwyg_content"
    assert "decidim:upgrade:fix_short_urls" in _commands("0.27.7", "0.28.4")
    assert _commands("0.28.4", "0.28.6") == []  # a patch inside a minor: nothing more
    assert "decidim:upgrade:attachments_cleanup" in _commands("0.28.6", "0.29.2")
    assert "decidim:taxonomies:import_all_plans" in _commands("0.29.7", "0.30.6")
    assert _commands("0.30.6", "0.31.6")[0] == "decidim:upgrade:encryption"
    assert _commands("0.31.6", "0.32.0") == ["data:migrate"]
    # Along a whole path every task runs exactly once.
    path = DECIDIM.upgrade_path("0.27.6", "0.32.2")
    seen = [t for a, b in itertools.pairwise(["0.27.6", *path]) for t in DECIDIM.hop_tasks(a, b)]
    assert seen == list(DECIDIM.upgrade_tasks)
    import_plans = next(t for t in seen if t.command[-1] == "decidim:taxonomies:import_all_plans")
    assert (import_plans.version, import_plans.rerunnable) == ("0.30.0", False)
    assert OPENSLIDES.hop_tasks("3.2", "3.3") == ()


def test_runtime_per_version() -> None:
    ruby = {v.version: v.runtime.get("ruby") for v in DECIDIM.versions}
    assert (ruby["0.27.7"], ruby["0.28.6"], ruby["0.29.7"], ruby["0.31.6"], ruby["0.32.2"]) == (
        "3.0", "3.1", "3.2", "3.3", "3.4",
    )  # fmt: skip
    assert DECIDIM.version("0.28.4").runtime["node"] == "18"
    assert OPENSLIDES.version("3.2").runtime == {"python": "3.11"}


@pytest.mark.parametrize("app", [DECIDIM, OPENSLIDES], ids=["decidim", "openslides"])
def test_every_pair_of_versions(app: object) -> None:
    """Forward pairs have a path without skipped minors; backward pairs are refused."""
    from osp_ops.domain.catalog import App

    assert isinstance(app, App)
    versions = [v.version for v in app.versions]
    for a, b in itertools.permutations(versions, 2):
        if _key(a) < _key(b):
            path = app.upgrade_path(a, b)
            assert path[-1] == b
            steps = [a, *path]
            for x, y in itertools.pairwise(steps):
                assert _key(x) < _key(y), (a, b, path)
                mx, my = _minor(x), _minor(y)
                assert my[0] == mx[0] and my[1] - mx[1] <= 1, f"{a}->{b} skips a minor: {path}"
        else:
            with pytest.raises(CatalogError, match="downgrades and skipped versions are refused"):
                app.upgrade_path(a, b)


def test_decidim_edges_never_skip_a_minor() -> None:
    """The shipped data itself: each one-step edge moves at most one minor forward."""
    for v in DECIDIM.versions:
        for origin in v.upgrades_from:
            assert _key(origin) < _key(v.version)
            assert _minor(v.version)[1] - _minor(origin)[1] <= 1, (origin, v.version)


def test_no_path_without_the_intermediate_minor() -> None:
    """A jump the data does not allow in one step (1.0 -> 1.2 without 1.1) is refused."""
    versions = [
        {"version": "1.0", "tag": "1.0"},
        {"version": "1.1", "tag": "1.1"},
        {"version": "1.2", "tag": "1.2", "upgrades_from": ["1.1"]},
    ]
    app = parse_catalog(_catalog_text(versions)).app("x")
    with pytest.raises(CatalogError, match=re.escape("cannot be upgraded from 1.0 to 1.2")):
        app.upgrade_path("1.0", "1.2")
    with pytest.raises(CatalogError, match=re.escape("cannot be upgraded from 0.29.2 to 0.28.4")):
        DECIDIM.upgrade_path("0.29.2", "0.28.4")


def test_unknown_versions_and_apps_are_refused_naming_known_ones() -> None:
    with pytest.raises(CatalogError, match=r"unknown version '0\.30\.0' \(known: 0\.27\.6"):
        DECIDIM.upgrade_path("0.29.2", "0.30.0")
    with pytest.raises(CatalogError, match=re.escape("unknown version '2.0'")):
        OPENSLIDES.upgrade_path("2.0", "3.3")
    with pytest.raises(
        CatalogError, match=r"unknown app 'wordpress' \(known: decidim, openslides\)"
    ):
        CATALOG.app("wordpress")


def test_image_refs() -> None:
    assert DECIDIM.image_ref("0.28.5") == "ghcr.io/decidim/decidim:0.28.5"
    with pytest.raises(CatalogError, match="not a container image"):
        OPENSLIDES.image_ref("3.3")


def _catalog_text(versions: list[dict[str, object]]) -> str:
    app = {
        "display_name": "X", "kind": "container", "image": "x/x", "health_path": "/",
        "login_path": "/", "migrate_command": [], "data_paths": [], "main_tables": [],
        "env": {}, "admin_bootstrap": [], "versions": versions,
    }  # fmt: skip
    return yaml.safe_dump({"apps": {"x": app}})


def test_catalog_data_is_checked() -> None:
    ok = [
        {"version": "1.0", "tag": "1.0"},
        {"version": "1.1", "tag": "1.1", "upgrades_from": ["1.0"]},
    ]
    assert parse_catalog(_catalog_text(ok)).app("x").upgrade_path("1.0", "1.1") == ["1.1"]
    unknown = [{"version": "1.1", "tag": "1.1", "upgrades_from": ["0.9"]}]
    with pytest.raises(CatalogError, match="upgrades from unknown"):
        parse_catalog(_catalog_text(unknown))
    downgrade = [
        {"version": "1.0", "tag": "1.0", "upgrades_from": ["1.1"]},
        {"version": "1.1", "tag": "1.1"},
    ]
    with pytest.raises(CatalogError, match="a downgrade"):
        parse_catalog(_catalog_text(downgrade))
    twice = [{"version": "1.0", "tag": "1.0"}, {"version": "1.0", "tag": "1.0b"}]
    with pytest.raises(CatalogError, match="listed twice"):
        parse_catalog(_catalog_text(twice))
    no_tag = [{"version": "1.0"}]
    with pytest.raises(CatalogError, match="needs image and tag"):
        parse_catalog(_catalog_text(no_tag))
    unordered = [{"version": "1.10", "tag": "a"}, {"version": "1.9", "tag": "b"}]
    with pytest.raises(CatalogError, match="oldest first"):
        parse_catalog(_catalog_text(unordered))
    with pytest.raises(CatalogError, match="not a dotted number"):
        parse_catalog(_catalog_text([{"version": "1.0-beta", "tag": "a"}]))
    data = yaml.safe_load(_catalog_text(ok))
    data["apps"]["x"]["upgrade_tasks"] = [
        {"version": "2.0", "command": ["x"], "rerunnable": True, "description": "d"}
    ]
    with pytest.raises(CatalogError, match=re.escape("for unknown 2.0")):
        parse_catalog(yaml.safe_dump(data))
