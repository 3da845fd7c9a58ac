"""The app roles' contract: entry points, argument specs, and what nginx_vhost takes.

Every installed app has a role ``app_<name>`` with the entry points the playbooks call
(``tasks_from``); the variables the hosts platform passes satisfy each entry point's
``meta/argument_specs.yml`` (checked with Ansible's own validator); the playbooks and
the generic roles name no app; a vhost rendered from the roles has each app's upstream
and Content-Security-Policy.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from osp_ops.apps.loader import default_apps
from osp_ops.domain.catalog import default_catalog
from osp_ops.platforms.hosts import HostsPlatform, default_playbooks_dir
from osp_ops.settings import Settings
from tests.factories import make_spec

pytestmark = pytest.mark.unit

PLAYBOOKS = default_playbooks_dir()
BIN = Path(sys.executable).parent
# The role contract (docs/architecture.md, "Adding an app"): the playbook that calls each.
ENTRY_POINTS = {
    "deploy": "site_tenant.yml",
    "start": "tenant_resume.yml",
    "stop": "tenant_suspend.yml",
    "remove": "tenant_remove.yml",
    "task": "tenant_task.yml",
    "drill": "tenant_task.yml",
    "web": "roles/nginx_vhost/tasks/app.yml",
}
# The app roles in playbooks/roles; those whose app has a profile get the variables and
# vhost tests (a profile installed for a test alone may keep its role elsewhere).
ROLES = sorted(p.name.removeprefix("app_") for p in (PLAYBOOKS / "roles").glob("app_*"))
APPS = [a for a in ROLES if a in default_apps().profiles]
SECRETS = {
    "db_password": "pw-db-123456",
    "admin_password": "pw-admin-1234",
    "secret_key": "sk" * 20,
}
# The vhost values of each app before they moved into the app roles.
CSP = {
    "openslides": (
        "default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval';"
        " style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self' data:;"
        " connect-src 'self' wss:; media-src 'self' blob:; worker-src 'self' blob:;"
        " frame-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self';"
        " frame-ancestors 'self'"
    ),
    "decidim": (
        "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline';"
        " img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self' wss:;"
        " object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'self'"
    ),
}


def _specs(app: str) -> dict[str, Any]:
    path = PLAYBOOKS / "roles" / f"app_{app}" / "meta" / "argument_specs.yml"
    return dict(yaml.safe_load(path.read_text("utf-8"))["argument_specs"])


def _variables(app: str, tmp_path: Path, **run: Any) -> dict[str, Any]:
    """The extra variables of a run of ``app``'s tenant (as HostsPlatform._run builds)."""
    platform = HostsPlatform(
        settings=Settings(data_dir=tmp_path, tls_mode="none"), catalog=default_catalog()
    )
    spec = make_spec("lyon", app=app, platform="hosts")
    public, secret = platform._variables(spec, spec.app.version, run.pop("secrets", {}))
    return {**public, "osp_stage": "all", "osp_task": "", **run, **secret}


def test_no_playbook_or_generic_role_names_an_app() -> None:
    for path in sorted(PLAYBOOKS.rglob("*.yml")) + sorted(PLAYBOOKS.rglob("*.j2")):
        if path.relative_to(PLAYBOOKS).parts[:2] in {("roles", f"app_{a}") for a in ROLES}:
            continue
        text = path.read_text("utf-8")
        assert not re.search(r"osp_app\.name\s*(==|!=|in\b)", text), path
        for app in ROLES:
            assert not re.search(rf"\b{app}\b", text, re.I), f"{path} names {app}"


@pytest.mark.parametrize("app", ROLES)
def test_app_role_has_every_entry_point_and_its_argument_spec(app: str) -> None:
    role = PLAYBOOKS / "roles" / f"app_{app}"
    specs = _specs(app)
    for entry in ENTRY_POINTS:
        assert (role / "tasks" / f"{entry}.yml").is_file(), f"app_{app} lacks tasks/{entry}.yml"
        assert entry in specs, f"app_{app}'s argument_specs has no entry point {entry}"
    assert "main" in specs
    for entry, playbook in ENTRY_POINTS.items():
        text = (PLAYBOOKS / playbook).read_text("utf-8")
        # tenant_task.yml picks 'drill' or 'task' from osp_task.
        called = f"tasks_from: {entry}" in text or f"'{entry}'" in text
        assert called, f"{playbook} does not call the entry point {entry}"


@pytest.mark.parametrize("app", APPS)
@pytest.mark.parametrize(
    ("entry", "run"),
    [
        ("deploy", {"secrets": SECRETS}),
        ("main", {"secrets": SECRETS}),
        ("start", {}),
        ("stop", {}),
        ("remove", {"osp_owner_mark": "osp-ops tenant lyon x"}),
        ("web", {}),
        ("task", {"secrets": SECRETS, "osp_task": "migrate"}),
        ("task", {"secrets": SECRETS, "osp_task": "bootstrap-admin"}),
        ("drill", {"secrets": SECRETS, "osp_task": "drill-app",
                   "osp_drill": {"database": "osp_lyon_drill_ab12cd", "files": ""}}),
    ],
)  # fmt: skip
def test_hosts_variables_satisfy_the_argument_spec(
    app: str, entry: str, run: dict[str, Any], tmp_path: Path
) -> None:
    options = _specs(app)[entry]["options"]
    given = _variables(app, tmp_path, **run)
    # As the role's validation task does: the variables the spec names, from the run's.
    result = ArgumentSpecValidator(options).validate({k: given[k] for k in options if k in given})
    assert result.error_messages == [], (app, entry)


@pytest.mark.parametrize("app", APPS)
def test_argument_spec_refuses_an_unknown_task_and_a_missing_secret(
    app: str, tmp_path: Path
) -> None:
    specs = _specs(app)
    given = _variables(app, tmp_path, secrets=SECRETS, osp_task="drop-db")
    task = {k: given[k] for k in specs["task"]["options"]}
    errors = ArgumentSpecValidator(specs["task"]["options"]).validate(task).error_messages
    assert any("osp_task must be one of" in e for e in errors), errors
    given = _variables(app, tmp_path, secrets={"admin_password": "x" * 12})
    deploy = {k: given[k] for k in specs["deploy"]["options"]}
    errors = ArgumentSpecValidator(specs["deploy"]["options"]).validate(deploy).error_messages
    assert any("db_password" in e for e in errors), errors


_RENDER = """\
- name: Render a tenant's vhost as nginx_vhost does.
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Read the osp-ops defaults.
      ansible.builtin.include_vars: {{file: "{roles}/osp/defaults/main.yml"}}
    - name: Ask the app role, as nginx_vhost does.
      ansible.builtin.include_role: {{name: nginx_vhost, tasks_from: app, public: true}}
    - name: Render the vhost.
      ansible.builtin.template:
        src: "{roles}/nginx_vhost/templates/vhost.conf.j2"
        dest: "{{{{ out_dir }}}}/{{{{ 'maintenance' if nginx_vhost_maintenance else 'live' }}}}.conf"
        mode: "0644"
      loop: [false, true]
      vars: {{nginx_vhost_maintenance: "{{{{ item }}}}"}}
"""


@pytest.mark.parametrize("app", APPS)
def test_vhost_takes_the_app_roles_upstream_and_csp(app: str, tmp_path: Path) -> None:
    extra = _variables(app, tmp_path / "data", secrets=SECRETS)
    extra.update(
        osp_default_host_root=str(tmp_path / "root"),
        out_dir=str(tmp_path),
        ansible_python_interpreter=sys.executable,
    )
    (tmp_path / "vars.json").write_text(json.dumps(extra))
    (tmp_path / "render.yml").write_text(_RENDER.format(roles=PLAYBOOKS / "roles"))
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
           "ANSIBLE_NOCOLOR": "1", "ANSIBLE_ROLES_PATH": str(PLAYBOOKS / "roles")}  # fmt: skip
    r = subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local",
         "-e", f"@{tmp_path / 'vars.json'}", str(tmp_path / "render.yml")],
        capture_output=True, text=True, env=env, check=False, timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    live = (tmp_path / "live.conf").read_text()
    page = (tmp_path / "maintenance.conf").read_text()
    header = f'add_header Content-Security-Policy "{CSP[app]}" always;'
    assert header in live and header in page
    srv = f"{tmp_path}/root/srv/osp-ops"
    upstream = {"openslides": f"unix:{srv}/lyon/run/app.sock", "decidim": "127.0.0.1:3000"}
    assert f"proxy_pass http://{upstream[app]}:;" in live
    assert "proxy_pass" not in page
