"""The project's own static checks, so CI enforces them: ruff (lint and format), mypy
strict on the package, and the import-linter layer contracts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

CHECKS = {
    "ruff check": [str(BIN / "ruff"), "check", "osp_ops", "tests", "bench"],
    "ruff format": [str(BIN / "ruff"), "format", "--check", "osp_ops", "tests", "bench"],
    "mypy": [str(BIN / "mypy"), "osp_ops"],
    "import-linter": [str(BIN / "lint-imports")],
}


@pytest.mark.timeout(600)
@pytest.mark.parametrize("name", list(CHECKS))
def test_static_check_passes(name: str) -> None:
    proc = subprocess.run(
        CHECKS[name], cwd=REPO, capture_output=True, text=True, timeout=600, check=False
    )
    assert proc.returncode == 0, f"{name} failed:\n{proc.stdout[-4000:]}{proc.stderr[-2000:]}"
