"""Errors a person can read: tables show one line per error, `op show` the full text.

The sample is pip 23.0.1 failing as it did on a fresh Debian 12 (setuptools 41.6.0, no
wheel: ``setup.py install`` of mypy_extensions imports the gone bdist_wininst), wrapped
as Ansible's pip module and platforms.hosts wrap it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from osp_ops.cli.main import app
from osp_ops.cli.output import ConsoleProgress, console
from osp_ops.domain.error_text import one_line
from osp_ops.domain.phases import Phase
from osp_ops.engine.context import build_context
from osp_ops.platforms.hosts.runs import _message
from osp_ops.settings import Settings

pytestmark = pytest.mark.unit

DATA = Path(__file__).with_name("data")
TASK = "Install OpenSlides and its pins into the virtualenv."
HEAD = f"site.yml failed on host localhost, task {TASK!r}"
EXCEPTION = "ModuleNotFoundError: No module named 'distutils.command.bdist_wininst'"


def pip_module_msg() -> str:
    """The ``msg`` of Ansible's pip module when pip fails: both streams, whole."""
    out = (DATA / "pip-legacy-install-failure.stdout").read_text()
    err = (DATA / "pip-legacy-install-failure.stderr").read_text()
    return f"stdout: {out}\n:stderr: {err}"


def recorded_error() -> str:
    """The operation error platforms.hosts raises for that failed task."""
    res = {"failed": True, "cmd": ["/opt/venv/bin/pip", "install"], "msg": pip_module_msg()}
    return f"{HEAD}: {_message(res)}"


def test_failed_pip_task_is_the_task_and_the_exception_line() -> None:
    text = recorded_error()
    assert text.count("\n") > 8  # the tool's output, as recorded
    assert one_line(text) == f"{HEAD}: {EXCEPTION}"
    # The whole output (not the tail platforms.hosts keeps) and a phase reason too.
    assert one_line(f"{HEAD}: {pip_module_msg()}") == f"{HEAD}: {EXCEPTION}"
    assert one_line(f"create failed: {text}") == f"create failed: {HEAD}: {EXCEPTION}"


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("", ""),
        ("no tenant 'x'", "no tenant 'x'"),
        (
            "site.yml failed on host h1, task 'Ensure packages.': non-zero return code | "
            "E: Unable to locate package foo\nE: Package 'bar' has no installation candidate",
            "site.yml failed on host h1, task 'Ensure packages.': "
            "E: Package 'bar' has no installation candidate",
        ),
        (
            'site.yml failed on host h1, task "Run the app\'s migrations.": '
            'Traceback (most recent call last):\n  File "x.py", line 1\n'
            "psycopg.OperationalError: connection refused\n",
            'site.yml failed on host h1, task "Run the app\'s migrations.": '
            "psycopg.OperationalError: connection refused",
        ),
        (
            "site.yml failed on host h1, task 'Check.': the check said no\nsecond line",
            "site.yml failed on host h1, task 'Check.': the check said no",
        ),
        (
            "helm template decidim failed:\nError: parse error at (decidim/x.yaml:3)\n",
            "helm template decidim failed: Error: parse error at (decidim/x.yaml:3)",
        ),
        ("x" * 300, "x" * 239 + "…"),
    ],
)
def test_one_line(text: str, line: str) -> None:
    assert one_line(text) == line


def test_tables_show_one_line_and_op_show_the_full_text(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", tenants_dir=tmp_path / "tenants")
    ctx = build_context(settings, actor="test")
    ctx.tenants.upsert(
        slug="nanterre", app="openslides", desired_version="3.3", platform="hosts", spec_hash="x"
    )
    op, _ = ctx.operations.enqueue(
        tenant="nanterre", kind="create", steps=["install"], params={}, requested_by="test"
    )
    error = recorded_error()
    ctx.operations.step_failed(op.id, 0, error, final=True)
    ctx.operations.finish(op.id, "failed", error)
    ctx.tenants.set_phase("nanterre", Phase.failed, f"create failed: {error}", force=True)
    env = {
        "OSP_OPS_DATA_DIR": str(settings.data_dir),
        "OSP_OPS_TENANTS_DIR": str(settings.tenants_dir),
        "COLUMNS": "120",
    }
    runner = CliRunner()

    shown = runner.invoke(app, ["tenant", "show", "nanterre", "--no-health"], env=env)
    assert shown.exit_code == 0, shown.output
    flat = " ".join(shown.output.split())
    assert EXCEPTION in flat
    assert "Collecting" not in flat and "Traceback" not in flat and "hint:" not in flat
    assert len(shown.output.splitlines()) < 20

    full = runner.invoke(app, ["op", "show", op.id], env=env)
    assert full.exit_code == 0, full.output
    flat = " ".join(full.output.split())
    # The recorded text, whole, once (compared without whitespace: the console may fold
    # a long token such as a path at any column).
    assert "".join(error.split()) in "".join(full.output.split())
    assert flat.count("hint: See above for output from the failure.") == 1


def test_live_progress_shows_one_line_of_a_failed_step() -> None:
    progress = ConsoleProgress()
    with console.capture() as captured:
        progress.step("install", "failed", detail=recorded_error())
    progress.close()
    assert " ".join(captured.get().split()) == f"✗ install {HEAD}: {EXCEPTION}"
