"""Where a tenant runs: its inventory host and that host's variables, the localhost
inventory osp-ops generates when none is set, and the environment of the Ansible
commands (``playbooks/ansible.cfg``, this Python's tools)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from osp_ops.domain.errors import PlatformError
from osp_ops.domain.spec import HostsPlatform as HostsPlacement
from osp_ops.domain.spec import TenantSpec
from osp_ops.settings import Settings


def target_of(spec: TenantSpec) -> str:
    """The inventory host or group of a hosts tenant; PlatformError for another one."""
    if not isinstance(spec.platform, HostsPlacement):
        raise PlatformError(f"tenant {spec.slug!r} runs on {spec.platform.kind}, not on hosts")
    return spec.platform.target


def split_name(name: str) -> tuple[str, str]:
    """(first name, the rest) of a person's name."""
    first, _, last = name.strip().partition(" ")
    return first, last


def local_python() -> str:
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
        "PATH": tool_path(),
    }


def tool_path() -> str:
    """PATH with this Python's bin directory first: ansible-playbook of the same venv."""
    return os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])


def read_hostvars(inventory: Path | str, target: str, env: Mapping[str, str]) -> dict[str, Any]:
    """The variables of host ``target`` (or of a group's first host) in ``inventory``,
    with ``_name``, the host's name; ``env``: ansible_env(...)."""
    # ansible-inventory of this Python, as for the playbooks (tool_path): the runner's
    # get_inventory looks it up on the caller's PATH, which need not hold the venv.
    try:
        proc = subprocess.run(
            ["ansible-inventory", "-i", str(inventory), "--list"],
            capture_output=True, text=True, timeout=120, check=False,
            env={**os.environ, **env},
        )  # fmt: skip
        out = json.loads(proc.stdout) if proc.returncode == 0 else None
    except (OSError, ValueError, subprocess.TimeoutExpired) as e:
        raise PlatformError(f"cannot read inventory {inventory}: {e}") from e
    if not isinstance(out, dict):
        err = proc.stderr.strip()[-500:]
        raise PlatformError(f"cannot read inventory {inventory}: {err}")
    meta = out.get("_meta", {}).get("hostvars", {})
    names = [target] if target in meta else list(out.get(target, {}).get("hosts", []))
    if not names:
        raise PlatformError(f"inventory {inventory} has no host {target!r}")
    return {"_name": names[0], **meta.get(names[0], {})}


def run_inventory(run_dir: Path, settings: Settings, local_vars: Mapping[str, Any]) -> str:
    """The inventory of a run: ``settings.inventory``, else a localhost one written in
    ``run_dir`` (connection local, the settings' host root and ports, ``local_vars``)."""
    if settings.inventory is not None:
        return str(Path(settings.inventory).resolve())
    host = {
        "ansible_connection": "local",
        "ansible_python_interpreter": local_python(),
        "osp_host_root": settings.host_root,
        "osp_http_port": settings.http_port,
        "osp_https_port": settings.https_port,
        **local_vars,
    }
    path = run_dir / "inventory" / "hosts.yml"
    path.parent.mkdir(mode=0o700)
    path.write_text(yaml.safe_dump({"all": {"hosts": {"localhost": host}}}))
    return str(path)
