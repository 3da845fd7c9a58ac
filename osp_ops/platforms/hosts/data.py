"""Where a hosts tenant's data is, and the commands that reach it on its host.

The layout comes from the playbooks (the defaults of the roles ``osp`` and
``postgresql_server``, read by ``layout.py``) and the app's profile: the tenant database ``osp_<slug>`` lives in the osp-ops PostgreSQL
cluster of the host (socket directory ``<host root>/run/osp-ops/postgresql``, port
``osp_postgresql_port``), the uploaded files in the profile's ``hosts_files`` path under
the tenant's directory ``<srv dir>/<directory>`` (``<srv dir>`` =
``<host root>/srv/osp-ops``): ``data/media`` for OpenSlides, owned by the tenant's own
Unix user (``tenant_names(slug).unix_user``, after the host's ``osp_unix_user_prefix``),
``storage`` for Decidim, root's (its container writes them).

Every command starts ON the host: for ``ansible_connection=local`` directly
(``runuser -u postgres -- pg_dump ...``); for SSH hosts behind
``ssh -i KEY -o BatchMode=yes <common args> user@host``. No password is needed (peer
authentication over the socket as ``postgres``), so none is ever on argv.

Restores go the other way through the same prefix: ``pg_restore`` as ``postgres`` on
the host reads the archive on stdin; files are extracted by ``tar`` as their owner (the
tenant's user, so they are its files whatever the archive says) into a directory beside
the live one (``media.restore-<ts>``, the engine's name), then switched by two renames,
also as that owner.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from osp_ops.apps.base import HostsFiles
from osp_ops.apps.loader import AppRegistry, default_apps
from osp_ops.domain.errors import PlatformError
from osp_ops.domain.names import db_name_for, tenant_names
from osp_ops.domain.spec import HostsPlatform as HostsPlacement
from osp_ops.domain.spec import TenantSpec
from osp_ops.platforms.data import Command, DatabaseAdmin, PsqlAdmin
from osp_ops.platforms.hosts.layout import HostVars, default_playbooks_dir, role_defaults
from osp_ops.settings import Settings

# Directories beside the live files directory that restores and drills may create.
_BESIDE = re.compile(r"^media\.[a-z]+-[a-z0-9]{1,32}$")
# In directory $1: $2 (new) becomes $4 (the live files), the live one $3 (retired).
_SWITCH = (
    'cd "$1" && if [ -d "$2" ]; then if [ -e "$4" ]; then mv -T "$4" "$3"; fi;'
    ' mv -T "$2" "$4"; elif [ ! -d "$4" ]; then echo "neither $2 nor $4 exist" >&2;'
    " exit 1; fi"
)
_EXTRACT = 'rm -rf -- "$1" && mkdir -m 0750 -- "$1" && exec tar -C "$1" -xf -'


def _beside(name: str) -> str:
    if not _BESIDE.match(name):
        raise PlatformError(f"refusing files directory name {name!r}")
    return name


@dataclass(frozen=True)
class HostLayout:
    """Paths and connection of one host, from its inventory variables and the layout
    the roles' defaults define (``layout.py``); ``host_root`` is osp-ops' setting, which
    the playbooks get as ``osp_default_host_root``."""

    hostvars: Mapping[str, Any]
    host_root: str = "/"
    playbooks_dir: Path = field(default_factory=default_playbooks_dir)

    @cached_property
    def vars(self) -> HostVars:
        """The host's variables as its playbooks see them."""
        return HostVars(
            self.hostvars,
            extra={"osp_default_host_root": self.host_root},
            defaults=role_defaults(self.playbooks_dir),
        )

    def _dir(self, name: str) -> str:
        return str(self.vars.get(name)).rstrip("/")

    @property
    def root(self) -> str:
        """Host root without its trailing slash (``osp_host_root``)."""
        return self._dir("osp_host_root")

    @property
    def socket_dir(self) -> str:
        """The cluster's socket directory (``postgresql_server_socket_dir``)."""
        return self._dir("postgresql_server_socket_dir")

    @property
    def port(self) -> int:
        """The cluster's port (``osp_postgresql_port``)."""
        return int(self.vars.get("osp_postgresql_port"))

    @property
    def bindir(self) -> str:
        """The PostgreSQL programs of the host (``osp_postgresql_bindir``)."""
        return self._dir("osp_postgresql_bindir")

    @property
    def srv_dir(self) -> str:
        """Where tenants' app directories are (``osp_srv_dir``)."""
        return self._dir("osp_srv_dir")

    def app_user(self, slug: str) -> str:
        """The Unix user tenant ``slug``'s app runs as (owner of its uploaded files)."""
        return str(self.vars.get("osp_unix_user_prefix")) + tenant_names(slug).unix_user

    def tenant_dir(self, slug: str) -> str:
        """The tenant's directory (settings, files ... as its app role lays them out)."""
        return f"{self.srv_dir}/{tenant_names(slug).directory}"

    def files_parent(self, slug: str, files: HostsFiles) -> str:
        """The directory holding the live files directory and its staged copies."""
        parent = files.parent
        return f"{self.tenant_dir(slug)}/{parent}" if parent else self.tenant_dir(slug)

    def files_dir(self, slug: str, files: HostsFiles) -> str:
        """The tenant's uploaded files."""
        return f"{self.tenant_dir(slug)}/{files.path}"

    def as_app_user(self, slug: str, argv: Sequence[str]) -> tuple[str, ...]:
        """``argv`` run as tenant ``slug``'s Unix user."""
        return ("runuser", "-u", self.app_user(slug), "--", *argv)

    def as_files_owner(self, slug: str, files: HostsFiles, argv: Sequence[str]) -> tuple[str, ...]:
        """``argv`` run as the owner of the tenant's files (its user, else as is)."""
        return self.as_app_user(slug, argv) if files.app_user else tuple(argv)

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

    def postgres_tool(self, tool: str) -> tuple[str, ...]:
        """A PostgreSQL tool of the host run as ``postgres`` (no connection options)."""
        return ("runuser", "-u", "postgres", "--", f"{self.bindir}/{tool}")

    def as_postgres(self, tool: str) -> tuple[str, ...]:
        """A PostgreSQL tool run as ``postgres`` over the cluster's socket."""
        return (*self.postgres_tool(tool), "-h", self.socket_dir, "-p", str(self.port))


class HostsBackupAccess:
    """``BackupAccess`` of hosts tenants (inventory variables from the hosts platform)."""

    def __init__(
        self,
        hostvars_of: Any,
        settings: Settings,
        apps: AppRegistry | None = None,
        *,
        playbooks_dir: Path | None = None,
    ) -> None:
        """``hostvars_of(spec)`` gives the inventory variables of the tenant's host;
        ``apps`` the profiles that say where each app keeps its files;
        ``playbooks_dir`` the playbooks whose roles lay the hosts out."""
        self._hostvars_of = hostvars_of
        self.settings = settings
        self.apps = apps or default_apps()
        self.playbooks_dir = playbooks_dir or default_playbooks_dir()

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
            return dict(platform.hostvars(spec.platform.target))

        return cls(
            hostvars,
            settings,
            getattr(platform, "apps", None),
            playbooks_dir=getattr(platform, "playbooks_dir", None),
        )

    def layout(self, spec: TenantSpec) -> HostLayout:
        """The tenant host's layout."""
        return HostLayout(
            self._hostvars_of(spec),
            host_root=self.settings.host_root,
            playbooks_dir=self.playbooks_dir,
        )

    def files(self, spec: TenantSpec) -> HostsFiles | None:
        """Where the tenant's app keeps its uploaded files (its profile)."""
        return self.apps.profile(spec.app.name).hosts_files

    def _files(self, spec: TenantSpec) -> HostsFiles:
        files = self.files(spec)
        if files is None:
            raise PlatformError(f"{spec.app.name} keeps no files on the host of {spec.slug!r}")
        return files

    def files_dir(self, spec: TenantSpec) -> str:
        """The tenant's live files directory on its host."""
        return self.layout(spec).files_dir(spec.slug, self._files(spec))

    def database_name(self, spec: TenantSpec) -> str:
        """``osp_<slug>``."""
        return db_name_for(spec.slug)

    def dump_command(
        self, spec: TenantSpec, secrets: Mapping[str, str], *, snapshot: str | None = None
    ) -> Command:
        """pg_dump on the host as postgres over the socket."""
        layout = self.layout(spec)
        argv = [*layout.as_postgres("pg_dump"), "-Fc", "-Z0"]
        argv += [f"--snapshot={snapshot}"] if snapshot else []
        argv.append(self.database_name(spec))
        return Command(layout.on_host(argv))

    def files_command(self, spec: TenantSpec) -> Command | None:
        """tar of the app's files directory on the host (None: the app keeps none)."""
        files = self.files(spec)
        if files is None:
            return None
        layout = self.layout(spec)
        directory = layout.files_dir(spec.slug, files)
        return Command(layout.on_host(["tar", "-C", directory, "-cf", "-", "."]))

    def database_admin(self, spec: TenantSpec) -> DatabaseAdmin:
        """psql and pg_restore as postgres on the host."""
        layout = self.layout(spec)
        return PsqlAdmin(
            psql=layout.as_postgres("psql"),
            env={},
            pg_restore=layout.as_postgres("pg_restore"),
            pg_dump=layout.postgres_tool("pg_dump"),
            wrap=layout.on_host,
        )

    # -- FilesAccess -----------------------------------------------------------------

    def files_restore_command(self, spec: TenantSpec, name: str) -> Command:
        """tar -x as the files' owner into ``<parent>/<name>`` (emptied first)."""
        layout, files = self.layout(spec), self._files(spec)
        target = f"{layout.files_parent(spec.slug, files)}/{_beside(name)}"
        argv = layout.as_files_owner(spec.slug, files, ["sh", "-c", _EXTRACT, "sh", target])
        return Command(layout.on_host(argv))

    def switch_files(self, spec: TenantSpec, *, new: str, retired: str) -> None:
        """Two renames as the files' owner; a rerun after the switch does nothing."""
        layout, files = self.layout(spec), self._files(spec)
        parent = layout.files_parent(spec.slug, files)
        argv = ["sh", "-c", _SWITCH, "sh", parent, _beside(new), _beside(retired), files.name]
        self._run(layout, layout.as_files_owner(spec.slug, files, argv))

    def list_files(self, spec: TenantSpec, pattern: str) -> list[str]:
        """Names beside the live files matching ``pattern`` (e.g. ``media.old-*``)."""
        layout, files = self.layout(spec), self.files(spec)
        if files is None:
            return []
        parent = layout.files_parent(spec.slug, files)
        argv = ["find", parent, "-mindepth", "1", "-maxdepth", "1"]
        out = self._run(layout, [*argv, "-type", "d", "-name", pattern, "-printf", "%f\\n"])
        return sorted(line for line in out.splitlines() if _BESIDE.match(line))

    def drop_files(self, spec: TenantSpec, name: str) -> None:
        """rm -rf of one directory beside the live files."""
        layout, files = self.layout(spec), self._files(spec)
        target = f"{layout.files_parent(spec.slug, files)}/{_beside(name)}"
        self._run(layout, ["rm", "-rf", "--", target])

    @staticmethod
    def _run(layout: HostLayout, argv: Sequence[str], timeout: float = 600.0) -> str:
        try:
            proc = subprocess.run(
                layout.on_host(argv), capture_output=True, text=True, timeout=timeout, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as e:
            raise PlatformError(f"{argv[0]} on the tenant's host failed: {e}") from e
        if proc.returncode != 0:
            raise PlatformError(
                f"{argv[0]} on the tenant's host failed: {proc.stderr.strip()[-500:]}"
            )
        return proc.stdout
