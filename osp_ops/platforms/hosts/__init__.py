"""The hosts platform: tenants on VMs or bare metal, converged by the playbooks in
playbooks/ through ansible-runner.

Modules: ``platform.py`` (``HostsPlatform``: the Platform protocol, each run's
variables), ``runs.py`` (running one playbook: the only ``ansible_runner`` importer,
checked by import-linter; events, outcome, errors), ``orphans.py`` (run records, runs cut
off by a crash and their orphaned processes), ``inventory.py`` (the tenant's host, its
variables, the generated localhost inventory, the Ansible environment of
``playbooks/ansible.cfg``), ``layout.py`` (the host layout of the roles' defaults,
evaluated as Ansible does), ``artifacts.py`` (secrets file, masking, scrubbing what a run
keeps), ``data.py`` (a tenant's database and files on its host, for backups and restores).
"""

from osp_ops.platforms.hosts.data import HostLayout, HostsBackupAccess
from osp_ops.platforms.hosts.inventory import ansible_env
from osp_ops.platforms.hosts.layout import PLAYBOOKS_ENV, default_playbooks_dir
from osp_ops.platforms.hosts.platform import TASKS, HostsPlatform

__all__ = [
    "PLAYBOOKS_ENV",
    "TASKS",
    "HostLayout",
    "HostsBackupAccess",
    "HostsPlatform",
    "ansible_env",
    "default_playbooks_dir",
]
