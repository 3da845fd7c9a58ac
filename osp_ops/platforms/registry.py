"""Platforms by kind: what builds the platform of a spec's ``platform.kind``.

Each built-in kind is imported on first use only (each loads its own client library).
``$OSP_OPS_PLATFORM`` names a factory ``module:callable`` that builds the platform of
every kind instead (the crash tests run the real CLI on a stand-in this way); it is
called with the settings and the catalog, as the built-in ones are.

Adding a platform: a module with a class that implements ``platforms/base.py``'s
``Platform`` (and the capabilities it has), and its builder in ``BUILDERS``.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable

from osp_ops.domain.catalog import Catalog
from osp_ops.domain.errors import ConfigError
from osp_ops.platforms.base import Platform
from osp_ops.settings import Settings

PlatformBuilder = Callable[[Settings, Catalog], Platform]

OVERRIDE_ENV = "OSP_OPS_PLATFORM"


def _hosts(settings: Settings, catalog: Catalog) -> Platform:
    from osp_ops.platforms.hosts import HostsPlatform

    return HostsPlatform(settings=settings, catalog=catalog)


def _kubernetes(settings: Settings, catalog: Catalog) -> Platform:
    from osp_ops.platforms.kubernetes import KubernetesPlatform

    return KubernetesPlatform(settings=settings, catalog=catalog)


BUILDERS: dict[str, PlatformBuilder] = {"hosts": _hosts, "kubernetes": _kubernetes}


def _named(target: str) -> PlatformBuilder:
    """The factory ``module:callable`` (ConfigError when it cannot be found)."""
    module, _, attr = target.partition(":")
    try:
        builder = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError, ValueError) as e:
        raise ConfigError(f"{OVERRIDE_ENV}={target!r}: no such factory ({e})") from e
    if not callable(builder):
        raise ConfigError(f"{OVERRIDE_ENV}={target!r} is not callable")
    named: PlatformBuilder = builder
    return named


def builder_for(kind: str) -> PlatformBuilder:
    """What builds the platform of ``kind`` (ConfigError for an unknown kind)."""
    override = os.environ.get(OVERRIDE_ENV)
    if override:
        return _named(override)
    if kind not in BUILDERS:
        raise ConfigError(f"unknown platform {kind!r}")
    return BUILDERS[kind]


def build_platform(kind: str, settings: Settings, catalog: Catalog) -> Platform:
    """The platform of ``kind``, built."""
    return builder_for(kind)(settings, catalog)
