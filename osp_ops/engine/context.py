"""The one context every verb runs with, built once at the CLI or web entry point."""

from __future__ import annotations

import getpass
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from osp_ops.apps.loader import default_apps
from osp_ops.backups import open_store
from osp_ops.domain import redaction
from osp_ops.domain.catalog import Catalog
from osp_ops.domain.spec import TenantSpec
from osp_ops.engine.audit_anchors import StoreAnchors
from osp_ops.engine.registry import Registry, load_kinds
from osp_ops.platforms.base import Platform
from osp_ops.platforms.registry import build_platform
from osp_ops.settings import SECRET_FIELDS, Settings
from osp_ops.store.audit import AuditKey, AuditLog
from osp_ops.store.db import Database
from osp_ops.store.leases import Leases
from osp_ops.store.operations import Operations
from osp_ops.store.secrets import MasterKey, SecretStore
from osp_ops.store.specs import SpecRepository
from osp_ops.store.tenants import Tenants

PlatformFactory = Callable[[TenantSpec], Platform]


def default_actor() -> str:
    """Who is acting: $OSP_OPS_ACTOR, else user@host."""
    return os.environ.get("OSP_OPS_ACTOR") or f"{getpass.getuser()}@{socket.gethostname()}"


@dataclass
class Context:
    """Settings, stores, platforms and operation kinds, shared by every operation of one
    process."""

    settings: Settings
    db: Database
    catalog: Catalog
    actor: str
    platform_factory: PlatformFactory
    # The operation kinds and their steps (engine/registry.py; StepContext steps).
    kinds: Registry[Any]
    tenants: Tenants = field(init=False)
    operations: Operations = field(init=False)
    leases: Leases = field(init=False)
    audit: AuditLog = field(init=False)
    secrets: SecretStore = field(init=False)
    specs: SpecRepository = field(init=False)
    _platforms: dict[str, Platform] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.tenants = Tenants(self.db)
        self.operations = Operations(self.db)
        self.leases = Leases(self.db)
        master = MasterKey(self.settings.effective_master_key_file)
        self.audit = AuditLog(
            self.db,
            AuditKey(master),
            anchors=StoreAnchors(
                lambda: open_store(self.settings.effective_backup_url, self.settings)
            ),
            anchor_every=self.settings.audit_anchor_every,
        )
        self.secrets = SecretStore(self.db, master)
        self.specs = SpecRepository(self.settings.tenants_dir, self.catalog)

    def platform(self, spec: TenantSpec) -> Platform:
        """The platform that runs ``spec`` (one instance per kind, reused)."""
        key = spec.platform.kind
        if key not in self._platforms:
            self._platforms[key] = self.platform_factory(spec)
        return self._platforms[key]


def default_platform_factory(settings: Settings, catalog: Catalog) -> PlatformFactory:
    """Platforms by spec.platform.kind, from the platform registry (platforms/registry.py)."""

    def factory(spec: TenantSpec) -> Platform:
        return build_platform(spec.platform.kind, settings, catalog)

    return factory


def build_context(
    settings: Settings,
    *,
    actor: str | None = None,
    catalog: Catalog | None = None,
    platform_factory: PlatformFactory | None = None,
) -> Context:
    """Open the state DB (migrating it) and wire the stores, platforms and every
    operation kind (a fresh registry, whatever was imported before)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    catalog = catalog or default_apps().catalog  # every installed app profile's
    _register_setting_secrets(settings)
    return Context(
        settings=settings,
        db=Database(settings.effective_state_url),
        catalog=catalog,
        actor=actor or default_actor(),
        platform_factory=platform_factory or default_platform_factory(settings, catalog),
        kinds=load_kinds(),
    )


def _register_setting_secrets(settings: Settings) -> None:
    """Mask the settings' secrets (the S3 key, the admin DSN's password) in recorded text."""
    for name in SECRET_FIELDS:
        value = getattr(settings, name)
        if value is not None:
            redaction.register(value.get_secret_value())
            password = urlsplit(value.get_secret_value()).password
            if password:
                redaction.register(unquote(password))
