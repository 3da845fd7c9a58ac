"""Tier markers follow from the service fixtures a test uses (tests/fixtures/markers.py):
added through fixtures of fixtures, refused when a unit marker lies, checked after the
test for services asked for at run time. A small suite runs in a pytest of its own."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.markers import contradiction, needed_markers

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]

CONFTEST = """
import pytest

@pytest.fixture(scope="session")
def postgres():
    return "pg"

@pytest.fixture(scope="session")
def kube():
    return "kube"

@pytest.fixture
def settings(postgres, kube):
    return (postgres, kube)
"""

TESTS = """
import pytest

def test_gets_its_markers_through_fixtures(settings, request):
    assert request.node.get_closest_marker("integration")
    assert request.node.get_closest_marker("k8s")

@pytest.mark.unit
def test_unit_that_uses_postgres(settings):
    raise AssertionError("never runs")

def test_asks_at_run_time_unmarked(request):
    request.getfixturevalue("postgres")

@pytest.mark.integration
def test_asks_at_run_time_marked(request):
    request.getfixturevalue("postgres")

@pytest.mark.unit
def test_pure():
    pass
"""

INI = """[pytest]
addopts = --strict-markers -p no:cacheprovider -p no:xdist -p tests.fixtures.markers
markers =
    unit: u
    integration: i
    k8s: k
    e2e: e
"""


def _run(tmp_path: Path, *args: str) -> str:
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_sample.py").write_text(TESTS)
    (tmp_path / "pytest.ini").write_text(INI)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-rA", "-c", str(tmp_path / "pytest.ini"), *args],
        cwd=tmp_path, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    return proc.stdout + proc.stderr


def test_markers_come_from_fixtures_and_a_lie_fails(tmp_path: Path) -> None:
    out = _run(tmp_path, str(tmp_path))
    lines = [line for line in out.splitlines() if " test_sample.py::" in line]
    assert "PASSED test_sample.py::test_gets_its_markers_through_fixtures" in lines, out
    assert "PASSED test_sample.py::test_asks_at_run_time_marked" in lines, out
    assert "PASSED test_sample.py::test_pure" in lines, out
    assert "ERROR test_sample.py::test_unit_that_uses_postgres" in out, out
    assert re.search(
        r"ERROR at setup of test_unit_that_uses_postgres _+\nmarked unit but uses kube, "
        r"postgres: drop the unit marker \(it gets integration, k8s from its fixtures\)\n",
        out,
    ), out
    assert "ERROR test_sample.py::test_asks_at_run_time_unmarked" in out, out
    assert re.search(
        r"ERROR at teardown of test_asks_at_run_time_unmarked _+\nasked for postgres at run "
        r"time but is not marked integration: mark the test, its parameter or its module\n",
        out,
    ), out
    assert "never runs" not in out


def test_selection_by_marker_sees_the_added_markers(tmp_path: Path) -> None:
    out = _run(tmp_path, "-m", "k8s", "--collect-only", "-q", str(tmp_path))
    collected = [line for line in out.splitlines() if "::" in line]
    assert collected == [
        "test_sample.py::test_gets_its_markers_through_fixtures",
        "test_sample.py::test_unit_that_uses_postgres",
    ], out


def test_needed_markers_and_contradiction() -> None:
    needed = needed_markers(["tmp_path", "s3", "postgres", "ssh_hosts", "kube"])
    assert needed == {"integration": ["s3", "postgres"], "e2e": ["ssh_hosts"], "k8s": ["kube"]}
    assert contradiction({"integration"}, needed) is None
    assert contradiction({"unit"}, {}) is None
    assert contradiction({"unit"}, {"integration": ["s3"]}) == (
        "marked unit but uses s3: drop the unit marker (it gets integration from its fixtures)"
    )
