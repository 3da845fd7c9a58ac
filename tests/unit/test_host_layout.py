"""The host layout is defined once, in the roles' defaults: what HostLayout computes for a
host is what Ansible computes from the same defaults and inventory, path for path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from osp_ops.domain.errors import ConfigError
from osp_ops.platforms.hosts import HostLayout, ansible_env, default_playbooks_dir
from osp_ops.platforms.hosts.inventory import read_hostvars
from osp_ops.platforms.hosts.layout import HostVars

pytestmark = pytest.mark.unit

PLAYBOOKS = default_playbooks_dir()
BIN = Path(sys.executable).parent
# Inventory hosts: the defaults alone, a host root with a trailing slash, every layout
# variable set on the host, and values set on a group and templated from others.
HOSTS: dict[str, dict[str, Any]] = {
    "plain": {},
    "rooted": {"osp_host_root": "/srv/rooted/"},
    "custom": {
        "osp_host_root": "/c",
        "osp_run_dir": "/c/altrun",
        "osp_srv_dir": "/data/srv/",
        "osp_postgresql_port": 5544,
        "osp_postgresql_bindir": "/opt/pg/bin",
        "osp_unix_user_prefix": "t1-",
    },
    "grouped": {},
}
GROUP_VARS = {"osp_host_root": "/g", "postgresql_server_socket_dir": "{{ osp_lib_dir }}/pgsock"}
_PLAY = """\
- name: Print the layout variables as the playbooks see them.
  hosts: all
  gather_facts: false
  roles:
    - {role: osp, when: false}
    - {role: postgresql_server, when: false}
  tasks:
    - name: Write them.
      ansible.builtin.copy:
        dest: "{{ out_dir }}/{{ inventory_hostname }}.json"
        mode: "0644"
        content: "{{ {'root': osp_host_root, 'socket_dir': postgresql_server_socket_dir,
                      'port': osp_postgresql_port, 'srv_dir': osp_srv_dir,
                      'bindir': osp_postgresql_bindir,
                      'prefix': osp_unix_user_prefix} | to_json }}"
"""


def _inventory(tmp_path: Path) -> Path:
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    hosts = {name: {**local, **v} for name, v in HOSTS.items() if name != "grouped"}
    data = {
        "all": {
            "hosts": hosts,
            "children": {"g": {"hosts": {"grouped": local}, "vars": GROUP_VARS}},
        }
    }
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_host_layout_is_what_ansible_makes_of_the_role_defaults(tmp_path: Path) -> None:
    inventory = _inventory(tmp_path)
    (tmp_path / "layout.yml").write_text(_PLAY)
    root = "/var/tmp/osp-root"  # osp-ops' host_root setting (osp_default_host_root)
    env = {**os.environ, **ansible_env(PLAYBOOKS, {"ANSIBLE_ROLES_PATH": str(PLAYBOOKS / "roles")})}
    r = subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", str(inventory), str(tmp_path / "layout.yml"),
         "-e", json.dumps({"osp_default_host_root": root, "out_dir": str(tmp_path)})],
        capture_output=True, text=True, env=env, check=False, timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    for host in HOSTS:
        ansible = json.loads((tmp_path / f"{host}.json").read_text())
        layout = HostLayout(read_hostvars(inventory, host, env), host_root=root)
        ours = {
            "root": layout.root,
            "socket_dir": layout.socket_dir,
            "port": layout.port,
            "srv_dir": layout.srv_dir,
            "bindir": layout.bindir,
            "prefix": layout.app_user("lyon").removesuffix("osp-lyon"),
        }
        expected = {k: str(v).rstrip("/") if k != "port" else int(v) for k, v in ansible.items()}
        assert ours == expected, host
    # The defaults alone put everything under osp-ops' host root.
    plain = HostLayout({}, host_root=root)
    assert plain.socket_dir == f"{root}/run/osp-ops/postgresql"
    assert plain.srv_dir == f"{root}/srv/osp-ops"
    assert plain.port == 5432


def test_host_vars_follow_ansible_precedence_and_name_what_is_wrong() -> None:
    defaults = {
        "a": "{{ b }}-x",
        "b": "default",
        "selfref": "{{ selfref }}",
        "bad": "{{ b | nope }}",
    }
    hv = HostVars({"b": "host"}, extra={}, defaults=defaults)
    assert hv.get("a") == "host-x"
    assert HostVars({"b": "host"}, extra={"b": "extra"}, defaults=defaults).get("a") == "extra-x"
    with pytest.raises(ConfigError, match="selfref refers to itself"):
        hv.get("selfref")
    with pytest.raises(ConfigError, match="cannot evaluate host variable bad"):
        hv.get("bad")
    with pytest.raises(ConfigError, match="missing is not defined"):
        hv.get("missing")
