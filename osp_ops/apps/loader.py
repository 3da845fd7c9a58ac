"""Find the app profiles: every entry point of the ``osp_ops.apps`` group.

An entry point names a profile (an ``AppProfile``) or a callable returning one; its
name is the app's name. osp-ops declares OpenSlides and Decidim in its own
``pyproject.toml``; another distribution adds an app by declaring one more.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from importlib.metadata import entry_points

from osp_ops.apps.base import AppProfile
from osp_ops.domain.catalog import Catalog
from osp_ops.domain.errors import CatalogError, ConfigError

GROUP = "osp_ops.apps"


class AppRegistry:
    """The profiles of one process, by app name, and the catalog they make together."""

    def __init__(self, profiles: Iterable[AppProfile]) -> None:
        """``profiles``: one per app name."""
        self.profiles: dict[str, AppProfile] = {}
        for p in profiles:
            if p.name in self.profiles:
                raise ConfigError(f"two app profiles are called {p.name!r}")
            self.profiles[p.name] = p
        self.catalog = Catalog(apps={n: p.app for n, p in sorted(self.profiles.items())})

    def profile(self, name: str) -> AppProfile:
        """The profile of app ``name``; CatalogError names the known ones."""
        try:
            return self.profiles[name]
        except KeyError:
            known = ", ".join(sorted(self.profiles))
            raise CatalogError(f"unknown app {name!r} (known: {known})") from None

    @property
    def default_name(self) -> str:
        """The app ``tenant create`` and the web form choose when none is given."""
        marked = sorted(n for n, p in self.profiles.items() if p.default)
        if len(marked) != 1:
            raise ConfigError(f"exactly one app profile is the default, not {marked or 'none'}")
        return marked[0]


def load_apps(group: str = GROUP) -> AppRegistry:
    """Load every profile of the entry-point ``group``; ConfigError names a bad one."""
    found: list[AppProfile] = []
    for ep in sorted(entry_points(group=group), key=lambda e: e.name):
        try:
            obj = ep.load()
        except (ImportError, AttributeError) as e:
            raise ConfigError(f"app profile {ep.name!r} ({ep.value}) cannot be loaded: {e}") from e
        profile = obj if isinstance(obj, AppProfile) else obj() if callable(obj) else None
        if not isinstance(profile, AppProfile):
            raise ConfigError(f"app profile {ep.name!r} ({ep.value}) is not an AppProfile")
        if profile.name != ep.name:
            raise ConfigError(f"entry point {ep.name!r} gives the profile of {profile.name!r}")
        found.append(profile)
    if not found:
        raise ConfigError(
            f"no app profile found (entry points {group!r}): is osp-ops installed (pip install -e .)?"
        )
    return AppRegistry(found)


@cache
def default_apps() -> AppRegistry:
    """The profiles installed in this Python (loaded once per process)."""
    return load_apps()
