"""Smoke test of the ssh_hosts fixture: Ansible over SSH to two hosts plus localhost."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import ansible_runner
import pytest
import yaml

from tests.fixtures.ssh_hosts import SshHosts

pytestmark = [pytest.mark.infra, pytest.mark.integration]

PLAYBOOK = """
- name: Write a file on every host
  hosts: all
  gather_facts: false
  tasks:
    - name: Ensure the smoke directory exists.
      ansible.builtin.file:
        path: "{{ osp_host_root }}/srv/smoke"
        state: directory
        mode: "0755"
    - name: Ensure the smoke file says which host it is on.
      ansible.builtin.copy:
        dest: "{{ osp_host_root }}/srv/smoke/hello.txt"
        content: "hello from {{ inventory_hostname }}\\n"
        mode: "0644"
"""


def test_ssh_reaches_each_host(ssh_hosts: Callable[..., SshHosts]) -> None:
    hosts = ssh_hosts(2)
    assert len(hosts.hosts) == 2
    assert len({h.address for h in hosts.hosts}) == 2
    for host in hosts.hosts:
        out = subprocess.run(
            hosts.ssh_argv(host, "ip", "-4", "-o", "addr", "show", "eth0"),
            capture_output=True, text=True, check=True, timeout=30,
        )  # fmt: skip
        assert f" {host.address}/30 " in out.stdout  # the command ran inside the namespace
    inv = yaml.safe_load(hosts.inventory.read_text())
    host0 = inv["all"]["children"]["test_hosts"]["hosts"]["host0"]
    assert host0["ansible_user"] == "root"
    assert host0["osp_host_root"] == str(hosts.hosts[0].root)


def test_ansible_playbook_is_idempotent_over_ssh_and_local(
    ssh_hosts: Callable[..., SshHosts], tmp_path: Path
) -> None:
    hosts = ssh_hosts(2)
    local_root = tmp_path / "local-root"
    inventory = hosts.inventory_dict()
    inventory["all"]["children"]["local"] = {
        "hosts": {
            "localhost": {
                "ansible_connection": "local",
                "ansible_python_interpreter": sys.executable,
                "osp_host_root": str(local_root),
            }
        }
    }
    playbook = tmp_path / "smoke.yml"
    playbook.write_text(PLAYBOOK)

    def run(n: int) -> dict[str, dict[str, int]]:
        data_dir = tmp_path / f"runner{n}"
        data_dir.mkdir()
        r = ansible_runner.run(
            private_data_dir=str(data_dir),
            playbook=str(playbook),
            inventory=inventory,
            quiet=True,
            envvars={"ANSIBLE_NOCOLOR": "1"},
        )
        assert r.status == "successful", "\n".join(r.stdout.read().splitlines()[-40:])
        return dict(r.stats)

    first = run(1)
    names = {"host0", "host1", "localhost"}
    assert set(first["changed"]) == names
    assert all(first["changed"][h] == 2 for h in names)
    for host in hosts.hosts:
        text = (host.root / "srv/smoke/hello.txt").read_text()
        assert text == f"hello from {host.name}\n"
    assert (local_root / "srv/smoke/hello.txt").read_text() == "hello from localhost\n"

    second = run(2)
    assert sum(second.get("changed", {}).values()) == 0
    assert set(second["ok"]) == names
