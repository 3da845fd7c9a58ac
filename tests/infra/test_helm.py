"""Smoke test of the helm binary built by scripts/testbin."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.fixtures.procs import ServiceError, testbin

pytestmark = [pytest.mark.infra, pytest.mark.k8s]

CHART = Path(__file__).with_name("chart")


@pytest.fixture(scope="module")
def helm() -> Path:
    try:
        return testbin("helm")
    except ServiceError as e:
        pytest.fail(str(e), pytrace=False)


def test_helm_lint(helm: Path) -> None:
    out = subprocess.run([helm, "lint", "--strict", CHART], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "1 chart(s) linted, 0 chart(s) failed" in out.stdout


def test_helm_template(helm: Path) -> None:
    out = subprocess.run(
        [helm, "template", "demo", CHART, "--set", "replicas=3"],
        capture_output=True,
        text=True,
        check=True,
    )
    docs = [d for d in yaml.safe_load_all(out.stdout) if d]
    assert [(d["kind"], d["metadata"]["name"]) for d in docs] == [("Deployment", "demo-smoke")]
    assert docs[0]["spec"]["replicas"] == 3
