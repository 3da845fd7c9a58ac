"""The app catalog: apps, versions, upgrade paths and how each is run, loaded from data."""

from __future__ import annotations

from collections import deque
from enum import StrEnum
from functools import cache
from importlib import resources

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from osp_ops.domain.errors import CatalogError


class AppKind(StrEnum):
    """How an app is installed: a Python package in a virtualenv, or a container image."""

    python = "python"
    container = "container"


# Which app kinds each platform runs: the hosts platform installs Python apps in a
# virtualenv and runs container images; Kubernetes runs container images only. Spec
# validation refuses an app its platform cannot run (a new platform adds its line here).
PLATFORM_APP_KINDS: dict[str, frozenset[AppKind]] = {
    "hosts": frozenset({AppKind.python, AppKind.container}),
    "kubernetes": frozenset({AppKind.container}),
}


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def version_key(version: str) -> tuple[int, ...]:
    """``"0.28.4"`` -> ``(0, 28, 4)``: catalog versions are dotted numbers, compared so."""
    try:
        return tuple(int(part) for part in version.split("."))
    except ValueError:
        raise CatalogError(f"version {version!r} is not a dotted number") from None


class AppVersion(_Frozen):
    """One installable version of an app."""

    version: str
    package: str | None = None
    pins: tuple[str, ...] = ()
    # Versions the lock takes over the app's own metadata (scripts/lock-apps).
    overrides: tuple[str, ...] = ()
    tag: str | None = None
    upgrades_from: tuple[str, ...] = ()
    # What the version needs around it where a host provides it (ruby, node, python).
    runtime: dict[str, str] = {}


class UpgradeTask(_Frozen):
    """A one-time command a release asks for after its migrations.

    ``version`` is the release that introduced it (it need not be in the catalog):
    an upgrade from A to B runs the tasks with A < version <= B, once each.
    ``rerunnable`` says whether running it twice is safe (a resumed upgrade reruns
    only those; the others need a person when their first run did not finish).
    """

    version: str
    command: tuple[str, ...]
    rerunnable: bool
    description: str


class App(_Frozen):
    """An app osp-ops can host."""

    display_name: str
    kind: AppKind
    image: str | None = None
    health_path: str
    login_path: str
    migrate_command: tuple[str, ...]
    data_paths: tuple[str, ...]
    main_tables: tuple[str, ...]
    env: dict[str, str]
    admin_bootstrap: tuple[str, ...]
    versions: tuple[AppVersion, ...]
    # One-time tasks of each release, oldest first (run after the hop's migrations).
    upgrade_tasks: tuple[UpgradeTask, ...] = ()

    @model_validator(mode="after")
    def _check(self) -> App:
        known = {v.version for v in self.versions}
        if len(known) != len(self.versions):
            raise ValueError("a version is listed twice")
        try:
            keys = [version_key(v.version) for v in self.versions]
            task_keys = [version_key(t.version) for t in self.upgrade_tasks]
        except CatalogError as e:
            raise ValueError(str(e)) from None
        if keys != sorted(keys):
            raise ValueError("versions must be listed oldest first")
        for task, key in zip(self.upgrade_tasks, task_keys, strict=True):
            if not task.command:
                raise ValueError(f"a task of {task.version} has no command")
            if keys and key > keys[-1]:
                raise ValueError(f"task {' '.join(task.command)} is for unknown {task.version}")
        earlier: set[str] = set()
        for v in self.versions:
            unknown = set(v.upgrades_from) - known
            if unknown:
                raise ValueError(f"{v.version} upgrades from unknown {sorted(unknown)}")
            newer = set(v.upgrades_from) - earlier
            if newer:
                # Versions are listed oldest first: an edge from a later one is a downgrade.
                raise ValueError(f"{v.version} upgrades from newer {sorted(newer)} (a downgrade)")
            earlier.add(v.version)
            if self.kind is AppKind.python and not v.package:
                raise ValueError(f"{v.version}: a python app version needs a package")
            if self.kind is AppKind.container and not (self.image and v.tag):
                raise ValueError(f"{v.version}: a container app version needs image and tag")
        return self

    def version(self, version: str) -> AppVersion:
        """The catalog entry for ``version``; CatalogError names the known ones."""
        for v in self.versions:
            if v.version == version:
                return v
        known = ", ".join(v.version for v in self.versions)
        raise CatalogError(f"unknown version {version!r} (known: {known})")

    @property
    def latest(self) -> AppVersion:
        """The newest version listed (the catalog is ordered oldest first)."""
        return self.versions[-1]

    def image_ref(self, version: str) -> str:
        """``image:tag`` for a container app."""
        v = self.version(version)
        if self.image is None or v.tag is None:
            raise CatalogError(f"{self.display_name} {version} is not a container image")
        return f"{self.image}:{v.tag}"

    def hop_tasks(self, origin: str, version: str) -> tuple[UpgradeTask, ...]:
        """The one-time tasks of the hop ``origin`` -> ``version`` (origin < task <= version)."""
        low, high = version_key(origin), version_key(version)
        return tuple(t for t in self.upgrade_tasks if low < version_key(t.version) <= high)

    def upgrade_path(self, current: str, target: str) -> list[str]:
        """Versions to pass through from ``current`` to ``target`` (excluding current).

        Raises CatalogError when the catalog allows no path (a downgrade or a skip).
        """
        self.version(current)
        self.version(target)
        if current == target:
            return []
        nexts: dict[str, list[str]] = {v.version: [] for v in self.versions}
        for v in self.versions:
            for origin in v.upgrades_from:
                nexts[origin].append(v.version)
        previous: dict[str, str] = {}
        queue = deque([current])
        while queue:
            node = queue.popleft()
            for nxt in nexts[node]:
                if nxt not in previous and nxt != current:
                    previous[nxt] = node
                    queue.append(nxt)
        if target not in previous:
            raise CatalogError(
                f"{self.display_name} cannot be upgraded from {current} to {target}: "
                "no allowed path in the catalog (downgrades and skipped versions are refused)"
            )
        path = [target]
        while path[-1] in previous and previous[path[-1]] != current:
            path.append(previous[path[-1]])
        return list(reversed(path))


class Catalog(_Frozen):
    """Every app osp-ops knows."""

    apps: dict[str, App]

    def app(self, name: str) -> App:
        """The app called ``name``; CatalogError names the known ones."""
        try:
            return self.apps[name]
        except KeyError:
            raise CatalogError(
                f"unknown app {name!r} (known: {', '.join(sorted(self.apps))})"
            ) from None


def parse_catalog(text: str) -> Catalog:
    """Parse catalog YAML text."""
    try:
        return Catalog.model_validate(yaml.safe_load(text))
    except (ValidationError, yaml.YAMLError) as e:
        raise CatalogError(f"invalid app catalog: {e}") from e


# Pinned package sets of the python apps, next to the catalog (scripts/lock-apps).
BOOTSTRAP_LOCK = "python-bootstrap.txt"


def lock_name(app: str, version: str) -> str:
    """File name of the pinned package set of ``app`` ``version`` under locks/."""
    return f"{app}-{version}.txt"


def lock_source_line(entry: AppVersion) -> str:
    """The line a lock carries to tell which catalog entry it was made from."""
    parts = [entry.package or "", *entry.pins]
    if entry.overrides:
        parts += ["overrides:", *entry.overrides]
    return "# from: " + " ".join(parts)


def lock_text(app: str, version: str) -> str:
    """The pinned requirements (with hashes) of a python app version.

    Raises CatalogError when the catalog ships no lock for it (run scripts/lock-apps).
    """
    return _lock(lock_name(app, version))


def bootstrap_lock_text() -> str:
    """pip, setuptools and wheel, pinned with hashes: what an app venv gets first."""
    return _lock(BOOTSTRAP_LOCK)


def _lock(name: str) -> str:
    path = resources.files("osp_ops.domain").joinpath("locks", name)
    try:
        return path.read_text("utf-8")
    except FileNotFoundError:
        raise CatalogError(f"no pinned package set {name} (run scripts/lock-apps)") from None


@cache
def default_catalog() -> Catalog:
    """The catalog shipped with osp-ops."""
    text = resources.files("osp_ops.domain").joinpath("catalog.yaml").read_text("utf-8")
    return parse_catalog(text)
