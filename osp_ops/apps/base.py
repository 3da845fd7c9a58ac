"""``AppProfile``: what one participation app brings (versions, data, probes, hooks).

The core never names an app: the hosts platform takes its variables and role from the
profile, the Kubernetes platform its chart values, backups its data paths and main
tables. The hooks at the end are slots later features fill per app; the defaults say
"not supported" (``None``) rather than guess.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from osp_ops.domain.catalog import App, AppKind, UpgradeTask, bootstrap_lock_text, lock_text
from osp_ops.domain.errors import ConfigError
from osp_ops.domain.spec import TenantSpec
from osp_ops.settings import Settings


@dataclass(frozen=True)
class HostsFiles:
    """Where a hosts tenant's uploaded files are and who owns them.

    ``path``: relative to the tenant's directory ``<srv dir>/<directory>`` (the live
    directory; restores and drills stage copies beside it, in its parent). ``app_user``:
    the files belong to the tenant's own Unix user (extracted and switched as that user),
    else to root (an app whose container writes them).
    """

    path: str
    app_user: bool = True

    def __post_init__(self) -> None:
        parts = self.path.split("/")
        if not self.path or self.path.startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise ConfigError(f"files path {self.path!r} must be relative, without . or ..")

    @property
    def parent(self) -> str:
        """The directory holding the live files directory ('' for the tenant's own)."""
        return self.path.rpartition("/")[0]

    @property
    def name(self) -> str:
        """The live files directory's own name."""
        return self.path.rpartition("/")[2]


@dataclass(frozen=True)
class LoginCheck:
    """How to check an account's password over HTTP: one request, one success status."""

    method: str
    path: str
    json: Mapping[str, Any] | None
    ok_status: int


class AppProfile:
    """One app osp-ops hosts. Subclasses set ``name`` and override what differs."""

    name: str = ""
    # The ``tenant create`` and web form default when no app is chosen (one profile).
    default: bool = False
    # Uploaded files belong to the tenant's Unix user (else to root: a container's).
    files_as_app_user: bool = True
    # The first administrator's login (``tenant credentials``; its password is the
    # tenant's secret ``admin_password``).
    admin_username: str = "admin"

    def __init__(self, app: App) -> None:
        """``app``: the app's catalog entry (versions, paths, commands)."""
        if not self.name:
            raise ConfigError(f"{type(self).__name__} has no name")
        self.app = app

    # -- catalog ---------------------------------------------------------------------

    @property
    def display_name(self) -> str:
        """The name people read."""
        return self.app.display_name

    def requirements(self, version: str) -> tuple[str, str]:
        """(pinned package set, bootstrap set) a Python app's virtualenv gets; '' else."""
        if self.app.kind is not AppKind.python:
            return "", ""
        return lock_text(self.name, version), bootstrap_lock_text()

    # -- hosts platform ----------------------------------------------------------------

    @property
    def role(self) -> str:
        """The Ansible role that runs the app on hosts (``app_<name>``)."""
        return f"app_{self.name}"

    @property
    def roles_dir(self) -> Path | None:
        """A directory holding the role, for a profile that ships its own; None: the
        role is one of ``playbooks/roles``."""
        return None

    def hosts_vars(self, version: str) -> dict[str, Any]:
        """The ``osp_app`` variables of a playbook run of ``version``."""
        entry = self.app.version(version)
        requirements, bootstrap = self.requirements(version)
        return {
            "name": self.name,
            "kind": self.app.kind.value,
            "version": version,
            # The complete pinned set with hashes, and what the virtualenv gets before it.
            "requirements": requirements,
            "bootstrap_requirements": bootstrap,
            "image": self.app.image or "",
            "tag": entry.tag or "",
            "health_path": self.app.health_path,
            "login_path": self.app.login_path,
        }

    @property
    def hosts_files(self) -> HostsFiles | None:
        """Where the tenant's uploaded files are on its host (the catalog's one data
        path); None for an app that keeps none."""
        paths = self.app.data_paths
        if not paths:
            return None
        if len(paths) > 1:
            raise ConfigError(f"{self.display_name}: one data path per app, not {list(paths)}")
        return HostsFiles(paths[0], app_user=self.files_as_app_user)

    # -- Kubernetes ------------------------------------------------------------------------

    def chart_values(
        self,
        spec: TenantSpec,
        *,
        version: str,
        settings: Settings,
        db_cidr: str | None,
        **options: Any,
    ) -> dict[str, Any]:
        """The Helm values of the tenant's release; ConfigError for an app without chart."""
        raise ConfigError(f"{self.display_name} has no chart: it does not run on Kubernetes")

    # -- data ------------------------------------------------------------------------------

    @property
    def main_tables(self) -> tuple[str, ...]:
        """Tables whose row counts go into backup manifests and drill checks."""
        return tuple(self.app.main_tables)

    @property
    def personal_data(self) -> Mapping[str, tuple[str, ...]]:
        """Columns holding personal data, by table (erasure and anonymisation read it)."""
        return {}

    # -- probes ------------------------------------------------------------------------------

    @property
    def health_path(self) -> str:
        """The path that answers 200 when the app runs."""
        return self.app.health_path

    def version_from(self, body: Any) -> str | None:
        """The running version from the health path's JSON body, if it says."""
        if isinstance(body, Mapping):
            v = body.get("version")
            return str(v) if v else None
        return None

    @property
    def admin_bootstrap(self) -> tuple[str, ...]:
        """The app's own command that creates the first administrator."""
        return tuple(self.app.admin_bootstrap)

    def login_check(self, username: str, password: str) -> LoginCheck | None:
        """The request that proves ``password`` opens ``username``; None if unknown."""
        return None

    # -- hooks for later features ------------------------------------------------------------

    def upgrade_tasks(self, origin: str, version: str) -> tuple[UpgradeTask, ...]:
        """One-time tasks of the hop ``origin`` -> ``version`` (catalog data by default)."""
        return self.app.hop_tasks(origin, version)

    def vote_open_query(self) -> str | None:
        """SQL answering "is a vote or poll open now" (one boolean row); None: unknown."""
        return None

    def erase_user_statements(self, user_id: int) -> Sequence[str] | None:
        """SQL that erases one user's personal data; None: not supported yet."""
        return None

    def anonymise_statements(self) -> Sequence[str] | None:
        """SQL that anonymises a copy of the database (drills, exports); None: not yet."""
        return None
