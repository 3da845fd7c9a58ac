"""The hosts platform: tenants on VMs or bare metal, converged by the playbooks in playbooks/.

The only module that imports ``ansible_runner``. Each call is one runner run in its own
private data directory under ``settings.data_dir / "runs"`` (the last ``keep_runs`` are
kept for inspection). Secrets reach Ansible through ``env/extravars``, a mode-0600 file
that ansible-playbook reads with ``-e @file``: never on a command line. After the run the
file is deleted and every kept artifact is scrubbed of the secret values.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets as _random
import shutil
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import ansible_runner
import httpx
import yaml

from osp_ops.apps.loader import AppRegistry, default_apps
from osp_ops.domain.catalog import Catalog
from osp_ops.domain.errors import ConfigError, PlatformError
from osp_ops.domain.names import ownership_mark, tenant_names
from osp_ops.domain.spec import HostsPlatform as HostsPlacement
from osp_ops.domain.spec import TenantSpec
from osp_ops.platforms import tls
from osp_ops.platforms.base import Change, Event, Health, Reporter, TaskResult
from osp_ops.platforms.data import BackupAccess
from osp_ops.procinfo import start_time
from osp_ops.settings import Settings, TlsMode

PLAYBOOKS_ENV = "OSP_OPS_PLAYBOOKS"
TASKS = ("migrate", "bootstrap-admin")
_STATUS = {
    "runner_on_ok": "ok",
    "runner_on_failed": "failed",
    "runner_on_unreachable": "failed",
    "runner_on_skipped": "skipped",
}


def default_playbooks_dir() -> Path:
    """``$OSP_OPS_PLAYBOOKS``, else the playbooks/ directory of the source tree."""
    env = os.environ.get(PLAYBOOKS_ENV)
    return Path(env) if env else Path(__file__).resolve().parents[2] / "playbooks"


@dataclass
class _Outcome:
    """What one playbook run did."""

    changed: dict[str, int] = field(default_factory=dict)
    failures: list[tuple[str, str, str]] = field(default_factory=list)  # host, task, msg
    unreachable: list[tuple[str, str]] = field(default_factory=list)  # host, msg
    output: list[str] = field(default_factory=list)


def _message(res: Mapping[str, Any]) -> str:
    if "censored" in res:
        return "output hidden (no_log): see the host's logs"
    parts = [str(res.get(k, "")).strip() for k in ("msg", "stderr", "stdout")]
    parts = [p for p in parts if p]
    if not parts:
        return json.dumps(res)[:300]
    # Tails long enough for a traceback: `op show` prints them whole, tables one line.
    return " | ".join(p[-4000:] for p in parts)


def _target(spec: TenantSpec) -> str:
    if not isinstance(spec.platform, HostsPlacement):
        raise PlatformError(f"tenant {spec.slug!r} runs on {spec.platform.kind}, not on hosts")
    return spec.platform.target


def _split_name(name: str) -> tuple[str, str]:
    first, _, last = name.strip().partition(" ")
    return first, last


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
        hostvars = self._hostvars(_target(spec))
        return str(hostvars.get("ansible_host", hostvars["_name"])), int(
            hostvars.get(port_var, default)
        )

    def backup_access(self, spec: TenantSpec) -> BackupAccess:
        """Where the tenant's data is on its host (capability ``DataAccess``)."""
        from osp_ops.platforms.hosts_data import HostsBackupAccess

        return HostsBackupAccess.for_platform(self, self.settings)

    def hostvars(self, target: str) -> dict[str, Any]:
        """The inventory variables of host ``target``."""
        return self._hostvars(target)

    def _hostvars(self, target: str) -> dict[str, Any]:
        # ansible-inventory of this Python, as for the playbooks (_path): the runner's
        # get_inventory looks it up on the caller's PATH, which need not hold the venv.
        try:
            proc = subprocess.run(
                ["ansible-inventory", "-i", str(self.settings.inventory), "--list"],
                capture_output=True, text=True, timeout=120, check=False,
                env={**os.environ, **ansible_env(self.playbooks_dir, self.ansible_settings)},
            )  # fmt: skip
            out = json.loads(proc.stdout) if proc.returncode == 0 else None
        except (OSError, ValueError, subprocess.TimeoutExpired) as e:
            raise PlatformError(f"cannot read inventory {self.settings.inventory}: {e}") from e
        if not isinstance(out, dict):
            err = proc.stderr.strip()[-500:]
            raise PlatformError(f"cannot read inventory {self.settings.inventory}: {err}")
        meta = out.get("_meta", {}).get("hostvars", {})
        names = [target] if target in meta else list(out.get(target, {}).get("hosts", []))
        if not names:
            raise PlatformError(f"inventory {self.settings.inventory} has no host {target!r}")
        return {"_name": names[0], **meta.get(names[0], {})}

    # -- Runs ----------------------------------------------------------------------

    @staticmethod
    def _change(out: _Outcome) -> Change:
        return Change(changed=sum(out.changed.values()), details=dict(out.changed))

    def _variables(
        self, spec: TenantSpec, version: str, secrets: Mapping[str, str]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """(public, secret) extra variables of a run."""
        self.catalog.app(spec.app.name).version(version)  # CatalogError for an unknown one
        first, last = _split_name(spec.admin.name)
        public: dict[str, Any] = {
            "osp_target": _target(spec),
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
    ) -> _Outcome:
        public, secret = self._variables(spec, version, secrets)
        public.update(osp_stage=stage, osp_task=task, **(extra or {}))
        hidden = _secret_values(secret)
        _settle_interrupted_runs(self.settings.data_dir / "runs", spec.slug, hidden, reporter)
        run_dir = self._new_run_dir(spec.slug, playbook)
        _write_run_record(run_dir, {"slug": spec.slug, "owner": _proc_id(os.getpid())})
        env_dir = run_dir / "env"
        env_dir.mkdir(mode=0o700)
        _write_private(env_dir / "extravars", json.dumps({**public, **secret}))
        inventory = self._inventory(run_dir)
        outcome = _Outcome()
        playbook_pid: list[int] = []

        def on_event(event: Mapping[str, Any]) -> bool:
            if not playbook_pid and isinstance(event.get("pid"), int):
                playbook_pid.append(event["pid"])
                _write_run_record(run_dir, {"slug": spec.slug, "owner": _proc_id(os.getpid()),
                                            "playbook": _proc_id(event["pid"])})  # fmt: skip
            _record(event, outcome, reporter, hidden)
            return True

        try:
            result = ansible_runner.run(
                private_data_dir=str(run_dir),
                project_dir=str(self.playbooks_dir),
                playbook=playbook,
                inventory=inventory,
                ident="run",
                quiet=True,
                suppress_env_files=True,
                event_handler=on_event,
                envvars=ansible_env(self.playbooks_dir, self.ansible_settings),
            )
        finally:
            _scrub(run_dir, hidden)
        (run_dir / RUN_RECORD).unlink(missing_ok=True)  # ended here: nothing to settle
        for host, msg in outcome.unreachable:
            raise PlatformError(f"host {host} unreachable: {msg}")
        for host, task_name, msg in outcome.failures:
            raise PlatformError(f"{playbook} failed on host {host}, task {task_name!r}: {msg}")
        if result.rc != 0 or result.status != "successful":
            tail = _scrubbed_tail(run_dir / "artifacts" / "run" / "stdout", hidden)
            raise PlatformError(
                f"{playbook} failed on {_target(spec)} ({result.status}, rc {result.rc}): {tail}"
            )
        return outcome

    def _inventory(self, run_dir: Path) -> str:
        if self.settings.inventory is not None:
            return str(Path(self.settings.inventory).resolve())
        host = {
            "ansible_connection": "local",
            "ansible_python_interpreter": _local_python(),
            "osp_host_root": self.settings.host_root,
            "osp_http_port": self.settings.http_port,
            "osp_https_port": self.settings.https_port,
            **self.local_vars,
        }
        path = run_dir / "inventory" / "hosts.yml"
        path.parent.mkdir(mode=0o700)
        path.write_text(yaml.safe_dump({"all": {"hosts": {"localhost": host}}}))
        return str(path)

    def _new_run_dir(self, slug: str, playbook: str) -> Path:
        runs = self.settings.data_dir / "runs"
        runs.mkdir(parents=True, exist_ok=True, mode=0o700)
        kept = sorted((p for p in runs.iterdir() if p.is_dir()), key=lambda p: p.name)
        for old in kept[: max(0, len(kept) - self.keep_runs + 1)]:
            shutil.rmtree(old, ignore_errors=True)
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        name = f"{stamp}-{time.monotonic_ns() % 10**9:09d}-{slug}-{Path(playbook).stem}"
        path = runs / f"{name}-{_random.token_hex(3)}"
        path.mkdir(mode=0o700)
        return path


def _local_python() -> str:
    """The host's own Python for modules on localhost (as on any host), else ours."""
    system = Path("/usr/bin/python3")
    return str(system) if system.exists() else sys.executable


def ansible_env(playbooks_dir: Path, settings: Mapping[str, str]) -> dict[str, str]:
    """The environment of osp-ops' Ansible commands: the settings of
    ``playbooks/ansible.cfg`` (as a run by hand gets them), then ``settings``
    (``ANSIBLE_*``) over them; plain output; this Python's tools first on PATH."""
    return {
        "ANSIBLE_CONFIG": str(playbooks_dir / "ansible.cfg"),
        "ANSIBLE_NOCOLOR": "1",  # output only: osp-ops reads events, people read op show
        **settings,
        "PATH": _path(),
    }


def _path() -> str:
    """PATH with this Python's bin directory first: ansible-playbook of the same venv."""
    return os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])


def _version(version_from: Callable[[Any], str | None], r: httpx.Response) -> str | None:
    """The version the health answer carries, read by the app's profile."""
    try:
        return version_from(r.json())
    except ValueError:
        return None


def _record(
    event: Mapping[str, Any], outcome: _Outcome, reporter: Reporter, hidden: Sequence[str]
) -> None:
    kind = str(event.get("event", ""))
    data = event.get("event_data") or {}
    if kind == "playbook_on_stats":
        outcome.changed.update({str(h): int(n) for h, n in (data.get("changed") or {}).items()})
        for host in data.get("processed") or {}:
            outcome.changed.setdefault(str(host), 0)
        return
    if kind not in _STATUS:
        return
    host = str(data.get("host", "?"))
    task = str(data.get("task", "?"))
    res = data.get("res") or {}
    status = _STATUS[kind]
    if status == "ok" and res.get("changed"):
        status = "changed"
    detail = None
    if kind == "runner_on_unreachable":
        detail = _mask(_message(res), hidden)
        outcome.unreachable.append((host, detail))
    elif kind == "runner_on_failed" and not data.get("ignore_errors"):
        detail = _mask(_message(res), hidden)
        outcome.failures.append((host, task, detail))
    elif status in ("ok", "changed") and "censored" not in res:
        text = str(res.get("msg") or res.get("stdout") or "").strip()
        app_task = str(data.get("role", "")).startswith("app_")
        if text and app_task and str(data.get("task_action", "")).endswith(("debug", "command")):
            outcome.output.append(_mask(text, hidden))
    reporter(Event(message=task, host=host, status=status, detail=detail))


def _secret_values(secret: Mapping[str, Any]) -> list[str]:
    values: list[str] = []

    def walk(v: Any) -> None:
        if isinstance(v, Mapping):
            for x in v.values():
                walk(x)
        elif isinstance(v, str) and len(v) >= 6:
            values.append(v)
            values.append(json.dumps(v)[1:-1])
            if "-----BEGIN" in v:  # a PEM key: its base64 lines, whatever the quoting
                values.extend(line for line in v.splitlines() if len(line) >= 32)

    walk(secret)
    return sorted(set(values), key=len, reverse=True)


def _mask(text: str, hidden: Sequence[str]) -> str:
    for value in hidden:
        text = text.replace(value, "***")
    return text


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


def _scrub(run_dir: Path, hidden: Sequence[str]) -> None:
    """Delete the secrets file; mask secret values in every other kept file."""
    shutil.rmtree(run_dir / "env", ignore_errors=True)
    # The runner records the whole process environment next to the command: drop it.
    for command in run_dir.glob("artifacts/*/command"):
        try:
            data = json.loads(command.read_text("utf-8"))
            data.pop("env", None)
            command.write_text(json.dumps(data))
        except (OSError, ValueError):
            command.unlink(missing_ok=True)
    encoded = [v.encode() for v in hidden]
    for path in run_dir.rglob("*"):
        if not path.is_file() or path.is_symlink():
            continue
        try:
            data = path.read_bytes()
        except OSError:
            continue
        masked = data
        for value in encoded:
            masked = masked.replace(value, b"***")
        if masked != data:
            path.write_bytes(masked)


# A run records its osp-ops process and, from its first event, its ansible-playbook
# process ([pid, start time]), so that a later run can tell one cut off by a crash.
RUN_RECORD = "osp-run.json"
# How long the next run of a tenant waits for an orphaned ansible-playbook to end.
ORPHAN_WAIT = 120.0


def _proc_id(pid: int) -> list[Any]:
    return [pid, start_time(pid)]


def _proc_alive(proc: Any) -> bool:
    if not (isinstance(proc, list) and len(proc) == 2 and proc[1] is not None):
        return False
    return start_time(int(proc[0])) == str(proc[1])


def _write_run_record(run_dir: Path, record: Mapping[str, Any]) -> None:
    tmp = run_dir / f".{RUN_RECORD}.tmp"
    tmp.write_text(json.dumps(record))
    tmp.replace(run_dir / RUN_RECORD)


def _settle_interrupted_runs(
    runs: Path, slug: str, hidden: Sequence[str], reporter: Reporter
) -> None:
    """Clean up after runs whose osp-ops process died (kill -9, reboot) before its end.

    Such a run kept its secrets file, and its ansible-playbook (which ignores SIGHUP) may
    still run as an orphan: it stops after its current task, when it finds its terminal
    gone. The caller holds the tenant's lease, so a run of this tenant whose osp-ops
    process is dead is nobody's: wait for it to end (stop it after ORPHAN_WAIT), then
    scrub it as a finished run is scrubbed. Other tenants' dead runs lose their secrets
    file only.
    """
    if not Path("/proc/self/stat").exists():  # no way to tell a live owner from a dead one
        return
    for path in sorted(runs.glob(f"*/{RUN_RECORD}")):
        try:
            record = json.loads(path.read_text("utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(record, dict) or _proc_alive(record.get("owner")):
            continue
        run_dir = path.parent
        shutil.rmtree(run_dir / "env", ignore_errors=True)
        if record.get("slug") != slug:
            continue
        groups = _run_process_groups(run_dir, record.get("playbook"))
        if groups:
            reporter(Event(message=f"waiting for the interrupted run {run_dir.name} to end "
                           f"(process groups {sorted(groups)})", status="info"))  # fmt: skip
            _end_process_groups(groups, wait=ORPHAN_WAIT)
        _scrub(run_dir, hidden)
        path.unlink(missing_ok=True)


def _run_process_groups(run_dir: Path, playbook: Any) -> set[int]:
    """Process groups of a run's ansible-playbook (its session: workers, modules)."""
    pids = {int(playbook[0])} if _proc_alive(playbook) else set()
    marker = f"{run_dir}/".encode()
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if marker in (d / "cmdline").read_bytes():
                    pids.add(int(d.name))
            except OSError:
                continue
    groups = set()
    for pid in pids:
        try:
            groups.add(os.getpgid(pid))
        except OSError:
            continue
    groups.discard(os.getpgrp())
    return groups


def _end_process_groups(groups: set[int], *, wait: float) -> None:
    """Wait up to ``wait`` seconds for the groups to end, then SIGTERM, then SIGKILL."""

    def alive() -> set[int]:
        left = set()
        for g in groups:
            try:
                os.killpg(g, 0)
                left.add(g)
            except ProcessLookupError:
                continue
            except PermissionError:
                left.add(g)
        return left

    steps: list[tuple[signal.Signals | None, float]] = [
        (None, wait), (signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)
    ]  # fmt: skip
    for sig, seconds in steps:
        if sig is not None:
            for g in alive():
                with contextlib.suppress(OSError):
                    os.killpg(g, sig)
        deadline = time.monotonic() + seconds
        while alive() and time.monotonic() < deadline:
            time.sleep(0.5)
        if not alive():
            return


def _scrubbed_tail(path: Path, hidden: Sequence[str], lines: int = 15) -> str:
    try:
        text = path.read_text("utf-8", errors="replace")
    except OSError:
        return "no output"
    return _mask("\n".join(text.strip().splitlines()[-lines:]), hidden) or "no output"
