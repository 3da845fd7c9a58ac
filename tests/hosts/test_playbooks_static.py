"""Static checks of playbooks/: syntax of every playbook, ansible-lint, role layout, and
the ansible.cfg that osp-ops runs and runs by hand share."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from osp_ops.platforms.hosts import ansible_env, default_playbooks_dir

pytestmark = pytest.mark.unit

PLAYBOOKS = default_playbooks_dir()
BIN = Path(sys.executable).parent


def _env() -> dict[str, str]:
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "ANSIBLE_NOCOLOR": "1", "NO_COLOR": "1"}  # fmt: skip


@pytest.mark.parametrize("playbook", sorted(p.name for p in PLAYBOOKS.glob("*.yml")))
def test_playbook_syntax(playbook: str) -> None:
    r = subprocess.run(
        [str(BIN / "ansible-playbook"), "--syntax-check", "-i", "localhost,", playbook],
        cwd=PLAYBOOKS, capture_output=True, text=True, env=_env(), check=False,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr


def test_ansible_lint_production_profile() -> None:
    r = subprocess.run(
        [str(BIN / "ansible-lint"), "--nocolor", "--profile", "production", "."],
        cwd=PLAYBOOKS, capture_output=True, text=True, env=_env(), check=False,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]


@pytest.mark.parametrize("role", sorted(p.name for p in (PLAYBOOKS / "roles").iterdir()))
def test_role_layout_and_prefixed_commented_defaults(role: str) -> None:
    base = PLAYBOOKS / "roles" / role
    for part in ("defaults/main.yml", "tasks/main.yml", "handlers/main.yml", "meta/main.yml"):
        assert (base / part).is_file(), f"{role} lacks {part}"
    main = yaml.safe_load((base / "tasks/main.yml").read_text())
    assert all("include_tasks" in str(t) for t in main), "tasks/main.yml is a table of contents"
    lines = (base / "defaults/main.yml").read_text().splitlines()
    prefix = "osp_" if role == "osp" else f"{role}_"
    for i, line in enumerate(lines):
        if line and not line.startswith((" ", "#", "-")) and ":" in line:
            assert line.startswith(prefix), f"{role}: {line!r} is not prefixed {prefix}"
            assert (
                lines[i - 1].startswith("#")
                or lines[i - 1].startswith(prefix)
                or (lines[i - 2].startswith("#"))
            ), f"{role}: {line!r} has no comment"


# What osp-ops runs need, whatever the operator's own Ansible configuration says.
RUN_SETTINGS = {"ANSIBLE_PIPELINING": True, "RETRY_FILES_ENABLED": False,
                "INTERPRETER_PYTHON": "auto_silent"}  # fmt: skip


def _config(env: dict[str, str], cwd: Path) -> dict[str, object]:
    r = subprocess.run(
        [str(BIN / "ansible-config"), "dump", "--only-changed", "--format", "json"],
        cwd=cwd, capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    return {e["name"]: e["value"] for e in json.loads(r.stdout)}


def test_osp_ops_runs_and_runs_by_hand_read_the_same_ansible_cfg(tmp_path: Path) -> None:
    clean = {k: v for k, v in _env().items() if not k.startswith("ANSIBLE_")}
    # osp-ops: ANSIBLE_CONFIG names the file, wherever the process runs.
    ours = _config({**clean, **ansible_env(PLAYBOOKS, {})}, tmp_path)
    # By hand from playbooks/: Ansible reads ./ansible.cfg.
    by_hand = _config(clean, PLAYBOOKS)
    for name, value in RUN_SETTINGS.items():
        assert ours[name] == value, name
        assert by_hand[name] == value, name
    assert ours["CONFIG_FILE"] == by_hand["CONFIG_FILE"] == str(PLAYBOOKS / "ansible.cfg")
    # The ANSIBLE_* settings given to HostsPlatform win over the file.
    over = _config({**clean, **ansible_env(PLAYBOOKS, {"ANSIBLE_PIPELINING": "0"})}, tmp_path)
    assert over["ANSIBLE_PIPELINING"] is False
