"""Where a hosts tenant's data is, and the commands that reach it on its host.

The layout comes from the playbooks (roles ``osp``, ``postgresql_server``,
``app_openslides``): the tenant database ``osp_<slug>`` lives in the osp-ops PostgreSQL
cluster of the host (socket directory ``<host root>/run/osp-ops/postgresql``, port
``osp_postgresql_port``), the uploaded files under ``<host root>/srv/osp-ops/<slug>/media``.

Every command starts ON the host: for ``ansible_connection=local`` directly
(``runuser -u postgres -- pg_dump ...``); for SSH hosts behind
``ssh -i KEY -o BatchMode=yes <common args> user@host``. No password is needed (peer
authentication over the socket as ``postgres``), so none is ever on argv.

Restoring needs ``pg_restore`` on the host fed through the same prefix; the backup
library restores through a local DSN only, so ``restore_dsn`` refuses for now.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from osp_ops.domain.errors import PlatformError
from osp_ops.domain.spec import HostsPlatform as HostsPlacement
from osp_ops.domain.spec import TenantSpec
from osp_ops.platforms.data import Command, DatabaseAdmin, PsqlAdmin
from osp_ops.platforms.pgtenant import db_name_for
from osp_ops.settings import Settings


@dataclass(frozen=True)
class HostLayout:
    """Paths and connection of one host, from its inventory variables."""

    hostvars: Mapping[str, Any]
    host_root: str = "/"
    bindir: str = "/usr/lib/postgresql/15/bin"

    @property
    def root(self) -> str:
        """Host root without its trailing slash."""
        return str(self.hostvars.get("osp_host_root", self.host_root)).rstrip("/")

    @property
    def socket_dir(self) -> str:
        """The cluster's socket directory."""
        return f"{self.root}/run/osp-ops/postgresql"

    @property
    def port(self) -> int:
        """The cluster's port."""
        return int(self.hostvars.get("osp_postgresql_port", 5432))

    def media_dir(self, slug: str) -> str:
        """The tenant's uploaded files."""
        return f"{self.root}/srv/osp-ops/{slug}/media"

    def prefix(self) -> tuple[str, ...]:
        """How to start a command on the host: nothing locally, else ssh."""
        if self.hostvars.get("ansible_connection", "ssh") == "local":
            return ()
        host = str(self.hostvars.get("ansible_host", self.hostvars.get("_name", "")))
        if not host:
            raise PlatformError("inventory host has no ansible_host")
        argv = ["ssh", "-o", "BatchMode=yes"]
        key = self.hostvars.get("ansible_ssh_private_key_file")
        if key:
            argv += ["-i", str(key)]
        if self.hostvars.get("ansible_port"):
            argv += ["-p", str(self.hostvars["ansible_port"])]
        argv += shlex.split(str(self.hostvars.get("ansible_ssh_common_args", "")))
        user = self.hostvars.get("ansible_user")
        argv.append(f"{user}@{host}" if user else host)
        return tuple(argv)

    def on_host(self, argv: Sequence[str]) -> tuple[str, ...]:
        """``argv`` run on the host (quoted into one remote command over ssh)."""
        prefix = self.prefix()
        if not prefix:
            return tuple(argv)
        return (*prefix, "--", shlex.join(argv))

    def as_postgres(self, tool: str) -> tuple[str, ...]:
        """A PostgreSQL tool run as ``postgres`` over the cluster's socket."""
        return (
            "runuser", "-u", "postgres", "--", f"{self.bindir}/{tool}",
            "-h", self.socket_dir, "-p", str(self.port),
        )  # fmt: skip


class HostsBackupAccess:
    """``BackupAccess`` of hosts tenants (inventory variables from the hosts platform)."""

    def __init__(self, hostvars_of: Any, settings: Settings) -> None:
        """``hostvars_of(spec)`` gives the inventory variables of the tenant's host."""
        self._hostvars_of = hostvars_of
        self.settings = settings

    @classmethod
    def for_platform(cls, platform: Any, settings: Settings) -> HostsBackupAccess:
        """From a ``HostsPlatform`` (its inventory; localhost when none is set)."""

        def hostvars(spec: TenantSpec) -> Mapping[str, Any]:
            if settings.inventory is None:
                return {
                    "ansible_connection": "local",
                    "osp_host_root": settings.host_root,
                    **getattr(platform, "local_vars", {}),
                }
            if not isinstance(spec.platform, HostsPlacement):
                raise PlatformError(f"tenant {spec.slug!r} does not run on hosts")
            return dict(platform._hostvars(spec.platform.target))

        return cls(hostvars, settings)

    def layout(self, spec: TenantSpec) -> HostLayout:
        """The tenant host's layout."""
        return HostLayout(self._hostvars_of(spec), host_root=self.settings.host_root)

    def database_name(self, spec: TenantSpec) -> str:
        """``osp_<slug>``."""
        return db_name_for(spec.slug)

    def dump_command(self, spec: TenantSpec, secrets: Mapping[str, str]) -> Command:
        """pg_dump on the host as postgres over the socket."""
        layout = self.layout(spec)
        argv = [*layout.as_postgres("pg_dump"), "-Fc", "-Z0", self.database_name(spec)]
        return Command(layout.on_host(argv))

    def files_command(self, spec: TenantSpec) -> Command | None:
        """tar of the media directory on the host."""
        layout = self.layout(spec)
        return Command(layout.on_host(["tar", "-C", layout.media_dir(spec.slug), "-cf", "-", "."]))

    def database_admin(self, spec: TenantSpec) -> DatabaseAdmin:
        """psql as postgres on the host (no local restore DSN)."""
        layout = self.layout(spec)
        return PsqlAdmin(psql=layout.as_postgres("psql"), env={}, wrap=layout.on_host)
