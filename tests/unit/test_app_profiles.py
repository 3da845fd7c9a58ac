"""App profiles: found through the osp_ops.apps entry points, one per catalog app."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from osp_ops.apps.base import HostsFiles
from osp_ops.apps.loader import AppRegistry, default_apps, load_apps
from osp_ops.apps.openslides import OpenSlidesProfile
from osp_ops.domain.catalog import bootstrap_lock_text, default_catalog, lock_text
from osp_ops.domain.errors import CatalogError, ConfigError
from osp_ops.platforms.hosts import HostsPlatform
from osp_ops.settings import Settings

pytestmark = pytest.mark.unit


def test_the_shipped_profiles_make_the_shipped_catalog() -> None:
    apps = default_apps()
    assert sorted(apps.profiles) == ["decidim", "openslides"]
    assert apps.catalog == default_catalog()
    assert apps.default_name == "openslides"


def test_an_unknown_app_names_the_known_ones() -> None:
    with pytest.raises(
        CatalogError, match=r"unknown app 'wordpress' \(known: decidim, openslides\)"
    ):
        default_apps().profile("wordpress")


def test_an_empty_entry_point_group_is_refused() -> None:
    with pytest.raises(ConfigError, match="no app profile found"):
        load_apps("osp_ops.apps.none")


def test_two_profiles_of_one_name_are_refused() -> None:
    p = default_apps().profile("decidim")
    with pytest.raises(ConfigError, match="two app profiles are called 'decidim'"):
        AppRegistry([p, p])


def test_hosts_variables_of_openslides() -> None:
    v = default_apps().profile("openslides").hosts_vars("3.3")
    assert v["name"] == "openslides" and v["kind"] == "python" and v["version"] == "3.3"
    assert v["requirements"] == lock_text("openslides", "3.3")
    assert v["bootstrap_requirements"] == bootstrap_lock_text()
    assert (v["image"], v["tag"]) == ("", "")
    assert v["health_path"] == "/apps/core/version/"


def test_hosts_variables_of_decidim() -> None:
    v = default_apps().profile("decidim").hosts_vars("0.28.4")
    assert (v["requirements"], v["bootstrap_requirements"]) == ("", "")
    assert (v["image"], v["tag"]) == ("ghcr.io/decidim/decidim", "0.28.4")


def test_files_on_hosts() -> None:
    apps = default_apps()
    assert apps.profile("openslides").hosts_files == HostsFiles("data/media", app_user=True)
    assert apps.profile("decidim").hosts_files == HostsFiles("storage", app_user=False)
    assert HostsFiles("data/media").parent == "data" and HostsFiles("storage").parent == ""
    for bad in ("", "/srv/x", "data/../x", "./media"):
        with pytest.raises(ConfigError):
            HostsFiles(bad)


def test_version_probe() -> None:
    apps = default_apps()
    assert apps.profile("openslides").version_from({"openslides_version": "3.3"}) == "3.3"
    assert apps.profile("decidim").version_from({"version": "0.28.4"}) == "0.28.4"
    assert apps.profile("decidim").version_from("<html>") is None


def test_openslides_has_no_chart() -> None:
    with pytest.raises(ConfigError, match="OpenSlides has no chart"):
        default_apps().profile("openslides").chart_values(
            None,  # type: ignore[arg-type]
            version="3.3", settings=None, db_cidr=None,  # type: ignore[arg-type]
        )  # fmt: skip


class _OwnRole(OpenSlidesProfile):
    name = "ownrole"
    default = False
    roles_at: Path = Path("/nonexistent")

    @property
    def roles_dir(self) -> Path:
        return self.roles_at


def test_a_profile_that_ships_its_role_puts_it_on_the_role_path(tmp_path: Path) -> None:
    own = _OwnRole(default_catalog().app("openslides"))
    own.roles_at = tmp_path
    apps = AppRegistry([default_apps().profile("openslides"), own])
    platform = HostsPlatform(settings=Settings(data_dir=tmp_path), catalog=apps.catalog, apps=apps)
    path = platform.ansible_settings["ANSIBLE_ROLES_PATH"].split(os.pathsep)
    assert path == [str(platform.playbooks_dir / "roles"), str(tmp_path)]
    shipped = HostsPlatform(settings=Settings(data_dir=tmp_path), catalog=default_catalog())
    assert "ANSIBLE_ROLES_PATH" not in shipped.ansible_settings
