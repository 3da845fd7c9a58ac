"""The shared virtualenv install script: tenants of one version install it once, in turn."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.hosts.helpers import wheelhouse

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

SCRIPT = Path(__file__).parents[2] / "playbooks/roles/app_openslides/files/install_venv.sh"


def _start(venv: Path, requirements: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        ["sh", str(SCRIPT), str(venv), str(requirements), sys.executable,
         "--no-index", "--find-links", str(wheelhouse())],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def test_two_tenants_install_one_venv_at_the_same_moment(tmp_path: Path) -> None:
    venv, requirements = tmp_path / "openslides-x", tmp_path / "openslides-x.requirements.txt"
    requirements.write_text("# test\nsix\nroman\n")
    runs = [_start(venv, requirements) for _ in range(3)]
    outputs = [p.communicate(timeout=240)[0] for p in runs]
    assert [p.returncode for p in runs] == [0, 0, 0], outputs
    last = [o.strip().splitlines()[-1] for o in outputs]
    # The lock serialises them: one installs, the others find it complete.
    assert sorted(last) == ["installed", "up to date", "up to date"], outputs
    assert (venv / ".osp-ops-installed").read_text() == requirements.read_text()
    check = [str(venv / "bin/python"), "-c", "import six, roman"]
    subprocess.run(check, check=True)

    # New pins: installed again; a marker from a half-done install is not trusted.
    requirements.write_text("# test\nsix\nroman\npytz\n")
    assert _start(venv, requirements).communicate(timeout=240)[0].strip().endswith("installed")
    (venv / ".osp-ops-installed").unlink()
    assert _start(venv, requirements).communicate(timeout=240)[0].strip().endswith("installed")
    assert _start(venv, requirements).communicate(timeout=240)[0].strip().endswith("up to date")
