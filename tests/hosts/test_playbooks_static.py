"""Static checks of playbooks/: syntax of every playbook, ansible-lint, role layout."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from osp_ops.platforms.hosts import default_playbooks_dir

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
