"""The shared virtualenv install script: tenants of one version install it once, in turn,
from pinned sets with hashes, after a pinned pip, setuptools and wheel."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from osp_ops.domain.catalog import bootstrap_lock_text, lock_text

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

SCRIPT = Path(__file__).parents[2] / "playbooks/roles/app_openslides/files/install_venv.sh"
# The Python of the hosts (Debian 12): its venv has pip 23.0.1 and no wheel.
HOST_PYTHON = "/usr/bin/python3"


def _locked(*names: str) -> str:
    """The entries (name==version and hashes) of names in OpenSlides 3.3's lock."""
    text = lock_text("openslides", "3.3")
    entry = re.compile(r"^(\S+)==\S+ \\\n(?:    --hash=\S+(?: \\)?\n)+", re.M)
    wanted = [m.group(0) for m in entry.finditer(text) if m.group(1).lower() in names]
    assert len(wanted) == len(names), names
    return "# test\n" + "".join(wanted)


def _start(venv: Path, requirements: Path, cache: Path) -> subprocess.Popen[str]:
    bootstrap = venv.parent / "bootstrap.txt"
    bootstrap.write_text(bootstrap_lock_text())
    return subprocess.Popen(
        ["sh", str(SCRIPT), str(venv), str(bootstrap), str(requirements), HOST_PYTHON],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={"PATH": "/usr/bin:/bin", "PIP_CACHE_DIR": str(cache)},
    )  # fmt: skip


def test_two_tenants_install_one_venv_at_the_same_moment(tmp_path: Path) -> None:
    venv, requirements = tmp_path / "openslides-x", tmp_path / "openslides-x.requirements.txt"
    cache = tmp_path / "pip-cache"  # empty: nothing a warm machine holds
    requirements.write_text(_locked("six", "roman"))  # roman is an sdist: built here
    runs = [_start(venv, requirements, cache) for _ in range(3)]
    outputs = [p.communicate(timeout=400)[0] for p in runs]
    assert [p.returncode for p in runs] == [0, 0, 0], outputs
    last = [o.strip().splitlines()[-1] for o in outputs]
    # The lock serialises them: one installs, the others find it complete.
    assert sorted(last) == ["installed", "up to date", "up to date"], outputs
    subprocess.run([str(venv / "bin/python"), "-c", "import six, roman"], check=True)
    listing = subprocess.run(
        [str(venv / "bin/python"), "-m", "pip", "list", "--format=json"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    versions = {p["name"]: p["version"] for p in json.loads(listing.stdout)}
    pinned = dict(re.findall(r"^(\S+)==(\S+) ", bootstrap_lock_text(), re.M))
    assert {k: versions[k] for k in pinned} == pinned, versions

    # New pins: installed again; a marker from a half-done install is not trusted.
    requirements.write_text(_locked("six", "roman", "pytz"))
    assert (
        _start(venv, requirements, cache).communicate(timeout=400)[0].strip().endswith("installed")
    )
    (venv / ".osp-ops-installed").unlink()
    assert (
        _start(venv, requirements, cache).communicate(timeout=400)[0].strip().endswith("installed")
    )
    assert (
        _start(venv, requirements, cache).communicate(timeout=400)[0].strip().endswith("up to date")
    )


def test_an_unpinned_or_tampered_requirement_is_refused(tmp_path: Path) -> None:
    venv = tmp_path / "openslides-y"
    requirements = tmp_path / "requirements.txt"
    good = _locked("six")
    bad = re.sub(r"sha256:[0-9a-f]{8}", "sha256:00000000", good)
    requirements.write_text(bad)
    proc = _start(venv, requirements, tmp_path / "pip-cache")
    out = proc.communicate(timeout=400)[0]
    assert proc.returncode != 0 and "HASH" in out.upper(), out[-2000:]
    assert not (venv / ".osp-ops-installed").exists()
