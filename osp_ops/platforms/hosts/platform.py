"""The hosts platform: tenants on VMs or bare metal, converged by the playbooks in playbooks/.

``HostsPlatform`` builds each run's variables (the tenant, its app's profile, secrets,
TLS) and hands the run to ``runs.run_playbook``; the inventory and host variables come
from ``inventory.py``, a tenant's data on its host from ``data.py``.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import httpx

from osp_ops.apps.loader import AppRegistry, default_apps
from osp_ops.domain.catalog import Catalog
from osp_ops.domain.errors import ConfigError, PlatformError
from osp_ops.domain.names import ownership_mark, tenant_names
from osp_ops.domain.spec import TenantSpec
from osp_ops.platforms import tls
from osp_ops.platforms.base import Change, Health, Reporter, TaskResult
from osp_ops.platforms.data import BackupAccess
from osp_ops.platforms.hosts.data import HostsBackupAccess
from osp_ops.platforms.hosts.inventory import (
    ansible_env,
    read_hostvars,
    run_inventory,
    split_name,
    target_of,
)
from osp_ops.platforms.hosts.layout import PLAYBOOKS_ENV, default_playbooks_dir
from osp_ops.platforms.hosts.runs import Outcome, run_playbook
from osp_ops.settings import Settings, TlsMode

TASKS = ("migrate", "bootstrap-admin")


class HostsPlatform:
    """Runs tenants on inventory hosts through ansible-runner."""

    name = "hosts"

    def __init__(
        self,
        *,
        settings: Settings,
        catalog: Catalog,
        playbooks_dir: Path | None = None,
        keep_runs: int = 20,
        local_vars: Mapping[str, Any] | None = None,
        ansible_settings: Mapping[str, str] | None = None,
        apps: AppRegistry | None = None,
    ) -> None:
        """``local_vars``: extra host variables of the generated localhost inventory
        (e.g. ``osp_postgresql_port``), used when ``settings.inventory`` is unset.

        ``ansible_settings``: Ansible configuration as ``ANSIBLE_*`` environment
        variables, over osp-ops' own (pipelining on; Ansible's default ``ssh_args`` keep
        ControlPersist=60s). E.g. ``{"ANSIBLE_PIPELINING": "0"}``, or
        ``{"ANSIBLE_SSH_ARGS": "-C -o ControlMaster=no"}`` for no ControlPersist.

        ``apps``: the app profiles (the installed ones by default); ``catalog`` still
        decides which versions exist."""
        self.settings = settings
        self.catalog = catalog
        self.apps = apps or default_apps()
        self.playbooks_dir = playbooks_dir or default_playbooks_dir()
        self.keep_runs = keep_runs
        self.local_vars = dict(local_vars or {})
        self.ansible_settings = dict(ansible_settings or {})
        if bad := sorted(k for k in self.ansible_settings if not k.startswith("ANSIBLE_")):
            raise ConfigError(f"ansible_settings are ANSIBLE_* variables, not {', '.join(bad)}")
        # An app profile that ships its own role (a third-party app package) adds its
        # directory to the role search path, after the playbooks' own roles.
        app_roles = [str(p.roles_dir) for p in self.apps.profiles.values() if p.roles_dir]
        if app_roles and "ANSIBLE_ROLES_PATH" not in self.ansible_settings:
            self.ansible_settings["ANSIBLE_ROLES_PATH"] = os.pathsep.join(
                [str(self.playbooks_dir / "roles"), *app_roles]
            )
        if not (self.playbooks_dir / "site_tenant.yml").is_file():
            raise ConfigError(f"playbooks not found in {self.playbooks_dir} (set ${PLAYBOOKS_ENV})")

    # -- Platform protocol -------------------------------------------------------

    def provision(
        self,
        *,
        spec: TenantSpec,
        secrets: Mapping[str, str],
        reporter: Reporter,
        tenant_id: str | None = None,
    ) -> Change:
        """Database role and database of the tenant (and the host's cluster); a role or
        database without the tenant's ownership mark is refused."""
        mark = {"osp_owner_mark": ownership_mark(spec.slug, tenant_id)}
        out = self._run(
            "site_tenant.yml", spec, spec.app.version, secrets, reporter, stage="provision",
            extra=mark,
        )  # fmt: skip
        return self._change(out)

    def deploy(
        self, *, spec: TenantSpec, version: str, secrets: Mapping[str, str], reporter: Reporter
    ) -> Change:
        """Install ``version``, configure and start the app, serve it through nginx."""
        out = self._run("site_tenant.yml", spec, version, secrets, reporter, stage="deploy")
        return self._change(out)

    def run_task(
        self,
        *,
        spec: TenantSpec,
        version: str,
        task: str,
        secrets: Mapping[str, str],
        reporter: Reporter,
        command: Sequence[str] | None = None,
    ) -> TaskResult:
        """Run ``migrate`` or ``bootstrap-admin`` on the tenant's hosts."""
        if command is not None:
            # OpenSlides' hops have none; nothing else on hosts carries one-time tasks yet.
            raise PlatformError(
                f"the hosts platform runs no one-time upgrade tasks ({' '.join(command)})"
            )
        if task not in TASKS:
            raise PlatformError(f"unknown task {task!r} (known: {', '.join(TASKS)})")
        out = self._run("tenant_task.yml", spec, version, secrets, reporter, task=task)
        return TaskResult(ok=True, output="\n".join(out.output))

    def drill_app(
        self,
        *,
        spec: TenantSpec,
        database: str,
        files: str | None,
        secrets: Mapping[str, str],
        reporter: Reporter,
    ) -> TaskResult:
        """A scratch app on a restored database (``drill-app`` task); PlatformError if the
        app does not answer or refuses the admin. The live instance is untouched."""
        out = self._run(
            "tenant_task.yml", spec, spec.app.version, secrets, reporter, task="drill-app",
            extra={"osp_drill": {"database": database, "files": files or ""}},
        )  # fmt: skip
        return TaskResult(ok=True, output="\n".join(out.output))

    def health(self, *, spec: TenantSpec) -> Health:
        """GET the app's health path through nginx with the tenant's host name."""
        app = self.apps.profile(spec.app.name)
        scheme = "http" if self.settings.tls_mode is TlsMode.none else "https"
        address, port = self._endpoint(spec, scheme)
        default_port = 80 if scheme == "http" else 443
        shown = "" if port == default_port else f":{port}"
        url = f"{scheme}://{spec.hosts.primary}{shown}/"
        checks: dict[str, str] = {}
        try:
            with self.http_client(spec) as client:
                r = client.get(
                    f"{scheme}://{address}:{port}{app.health_path}",
                    headers={"Host": f"{spec.hosts.primary}{shown}"},
                    extensions={"sni_hostname": spec.hosts.primary},
                )
        except httpx.HTTPError as e:
            checks["nginx"] = f"unreachable: {e}"
            return Health(ok=False, url=url, checks=checks)
        checks["nginx"] = "ok"
        version = None
        if r.status_code == 200:
            checks["app"] = "ok"
            version = _version(app.version_from, r)
        elif r.status_code == 503:
            checks["app"] = "maintenance page (suspended)"
        elif r.status_code in (502, 504):
            checks["app"] = f"process not answering (HTTP {r.status_code})"
        else:
            checks["app"] = f"HTTP {r.status_code}"
        return Health(ok=r.status_code == 200, url=url, checks=checks, version=version)

    def admin_login(self, *, spec: TenantSpec, password: str) -> str | None:
        """Log the first administrator in through nginx, as the app's client does
        (capability ``AdminLogin``); ``ok``, what failed, or None for an app without a
        login check."""
        app = self.apps.profile(spec.app.name)
        check = app.login_check(app.admin_username, password)
        if check is None:
            return None
        scheme = "http" if self.settings.tls_mode is TlsMode.none else "https"
        address, port = self._endpoint(spec, scheme)
        default_port = 80 if scheme == "http" else 443
        shown = "" if port == default_port else f":{port}"
        try:
            with self.http_client(spec) as client:
                r = client.request(
                    check.method,
                    f"{scheme}://{address}:{port}{check.path}",
                    json=check.json,
                    headers={"Host": f"{spec.hosts.primary}{shown}"},
                    extensions={"sni_hostname": spec.hosts.primary},
                )
        except httpx.HTTPError as e:
            return f"unreachable: {e}"
        if r.status_code == check.ok_status:
            return "ok"
        return f"{app.admin_username} refused (HTTP {r.status_code})"

    def suspend(self, *, spec: TenantSpec, reporter: Reporter) -> Change:
        """Serve the maintenance page (503) and stop the app."""
        return self._change(self._run("tenant_suspend.yml", spec, spec.app.version, {}, reporter))

    def resume(self, *, spec: TenantSpec, reporter: Reporter) -> Change:
        """Start the app and serve it again."""
        return self._change(self._run("tenant_resume.yml", spec, spec.app.version, {}, reporter))

    def destroy(
        self, *, spec: TenantSpec, reporter: Reporter, tenant_id: str | None = None
    ) -> Change:
        """Remove vhost, process, files and database of the tenant (the database and role
        only when they carry its ownership mark; any id of its slug without ``tenant_id``)."""
        mark = {"osp_owner_mark": ownership_mark(spec.slug, tenant_id)}
        out = self._run("tenant_remove.yml", spec, spec.app.version, {}, reporter, extra=mark)
        return self._change(out)

    # -- HTTP ----------------------------------------------------------------------

    def http_client(self, spec: TenantSpec, **kwargs: Any) -> httpx.Client:
        """An httpx client trusting the local CA (or the system CAs under ACME)."""
        verify: ssl.SSLContext | bool = True
        if self.settings.tls_mode is TlsMode.local_ca:
            verify = ssl.create_default_context(cafile=str(tls.ca_cert_path(self.settings)))
        return httpx.Client(verify=verify, timeout=kwargs.pop("timeout", 10.0), **kwargs)

    def _endpoint(self, spec: TenantSpec, scheme: str) -> tuple[str, int]:
        """Address and nginx port of the tenant's (first) host."""
        port_var = "osp_http_port" if scheme == "http" else "osp_https_port"
        default = self.settings.http_port if scheme == "http" else self.settings.https_port
        if self.settings.inventory is None:
            return "127.0.0.1", int(self.local_vars.get(port_var, default))
        hostvars = self.hostvars(target_of(spec))
        return str(hostvars.get("ansible_host", hostvars["_name"])), int(
            hostvars.get(port_var, default)
        )

    def backup_access(self, spec: TenantSpec) -> BackupAccess:
        """Where the tenant's data is on its host (capability ``DataAccess``)."""
        return HostsBackupAccess.for_platform(self, self.settings)

    def hostvars(self, target: str) -> dict[str, Any]:
        """The inventory variables of host ``target`` (``inventory.read_hostvars``)."""
        inventory = self.settings.inventory
        if inventory is None:
            raise PlatformError("no inventory is set: tenants run on this machine")
        return read_hostvars(
            inventory, target, ansible_env(self.playbooks_dir, self.ansible_settings)
        )

    # -- Runs ----------------------------------------------------------------------

    @staticmethod
    def _change(out: Outcome) -> Change:
        return Change(changed=sum(out.changed.values()), details=dict(out.changed))

    def _variables(
        self, spec: TenantSpec, version: str, secrets: Mapping[str, str]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """(public, secret) extra variables of a run."""
        self.catalog.app(spec.app.name).version(version)  # CatalogError for an unknown one
        first, last = split_name(spec.admin.name)
        public: dict[str, Any] = {
            "osp_target": target_of(spec),
            "osp_tls_mode": self.settings.tls_mode.value,
            "osp_acme_email": self.settings.acme_email or "",
            "osp_default_host_root": self.settings.host_root,
            "osp_default_http_port": self.settings.http_port,
            "osp_default_https_port": self.settings.https_port,
            "osp_tenant": {
                "slug": spec.slug,
                "names": asdict(tenant_names(spec.slug)),
                "name": spec.name,
                "hostnames": list(spec.hosts.all),
                "version": version,
                "locale": spec.locales.default,
                "locales": list(spec.locales.available),
                "time_zone": spec.time_zone,
                "admin_first_name": first,
                "admin_last_name": last,
                "admin_email": str(spec.admin.email),
            },
            "osp_app": self.apps.profile(spec.app.name).hosts_vars(version),
        }
        secret: dict[str, Any] = {"osp_secrets": dict(secrets)}
        if self.settings.tls_mode is TlsMode.local_ca:
            cert = tls.issue_cert(self.settings, slug=spec.slug, hostnames=spec.hosts.all)
            secret["osp_tls"] = {"cert_pem": cert.cert_pem, "key_pem": cert.key_pem}
        return public, secret

    def _run(
        self,
        playbook: str,
        spec: TenantSpec,
        version: str,
        secrets: Mapping[str, str],
        reporter: Reporter,
        *,
        stage: str = "all",
        task: str = "",
        extra: Mapping[str, Any] | None = None,
    ) -> Outcome:
        public, secret = self._variables(spec, version, secrets)
        public.update(osp_stage=stage, osp_task=task, **(extra or {}))
        return run_playbook(
            playbooks_dir=self.playbooks_dir,
            playbook=playbook,
            runs_dir=self.settings.data_dir / "runs",
            keep_runs=self.keep_runs,
            slug=spec.slug,
            target=target_of(spec),
            public=public,
            secret=secret,
            inventory=lambda run_dir: run_inventory(run_dir, self.settings, self.local_vars),
            ansible_settings=self.ansible_settings,
            reporter=reporter,
        )


def _version(version_from: Callable[[Any], str | None], r: httpx.Response) -> str | None:
    """The version the health answer carries, read by the app's profile."""
    try:
        return version_from(r.json())
    except ValueError:
        return None
