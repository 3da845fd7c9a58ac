"""Where osp-ops puts things on a host, defined once: in the playbooks' role defaults.

The paths and names of a host (``osp_host_root``, ``osp_run_dir``, ``osp_srv_dir``, the
PostgreSQL socket directory, port and programs, the tenants' Unix user prefix) are the
defaults of the ``osp`` and ``postgresql_server`` roles. ``HostVars`` evaluates those
same templates for one host as Ansible does: the variables osp-ops passes on the command
line (``osp_default_host_root``) over the host's inventory variables over the role
defaults. ``data.HostLayout`` reads every path through it, so the playbooks and the
backups never disagree on where a tenant's database and files are
(``tests/unit/test_host_layout.py`` compares both with Ansible's own evaluation).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jinja2 import StrictUndefined, TemplateError, meta
from jinja2.sandbox import SandboxedEnvironment

from osp_ops.domain.errors import ConfigError

PLAYBOOKS_ENV = "OSP_OPS_PLAYBOOKS"
# The role defaults that lay a host out, in the order Ansible loads them.
LAYOUT_DEFAULTS = ("roles/osp/defaults/main.yml", "roles/postgresql_server/defaults/main.yml")


def default_playbooks_dir() -> Path:
    """``$OSP_OPS_PLAYBOOKS``, else the playbooks/ directory of the source tree."""
    env = os.environ.get(PLAYBOOKS_ENV)
    return Path(env) if env else Path(__file__).resolve().parents[3] / "playbooks"


@cache
def role_defaults(playbooks_dir: Path) -> Mapping[str, Any]:
    """The defaults of the layout roles of ``playbooks_dir`` (read once per process)."""
    merged: dict[str, Any] = {}
    for name in LAYOUT_DEFAULTS:
        path = playbooks_dir / name
        try:
            data = yaml.safe_load(path.read_text("utf-8")) or {}
        except (OSError, yaml.YAMLError) as e:
            raise ConfigError(f"cannot read the host layout from {path}: {e}") from e
        merged.update(data)
    return merged


def _regex_replace(value: Any, pattern: str = "", replacement: str = "") -> str:
    return re.sub(pattern, replacement, str(value))


_ENV = SandboxedEnvironment(undefined=StrictUndefined)
_ENV.filters["regex_replace"] = _regex_replace


class HostVars:
    """The variables of one host as a playbook sees them: ``extra`` (osp-ops' extra
    variables) over ``hostvars`` (the inventory's) over ``defaults`` (the roles'),
    templates evaluated. Only the filters the layout defaults use are known."""

    def __init__(
        self,
        hostvars: Mapping[str, Any],
        *,
        extra: Mapping[str, Any],
        defaults: Mapping[str, Any],
    ) -> None:
        """``hostvars``: the host's inventory variables (``ansible-inventory --list``)."""
        self._layers = (extra, hostvars, defaults)
        self._done: dict[str, Any] = {}

    def __contains__(self, name: str) -> bool:
        return any(name in layer for layer in self._layers)

    def get(self, name: str, _seen: tuple[str, ...] = ()) -> Any:
        """The value of ``name``; ConfigError when it is undefined or cannot be evaluated."""
        if name in self._done:
            return self._done[name]
        if name in _seen:
            raise ConfigError(f"host variable {name} refers to itself ({' -> '.join(_seen)})")
        layer = next((lay for lay in self._layers if name in lay), None)
        if layer is None:
            raise ConfigError(f"host variable {name} is not defined")
        value = layer[name]
        if isinstance(value, str) and ("{{" in value or "{%" in value):
            try:
                template = _ENV.parse(value)
                context = {
                    n: self.get(n, (*_seen, name))
                    for n in meta.find_undeclared_variables(template)
                    if n in self
                }
                value = _ENV.from_string(value).render(context)
            except TemplateError as e:
                raise ConfigError(f"cannot evaluate host variable {name} ({value!r}): {e}") from e
        self._done[name] = value
        return value
