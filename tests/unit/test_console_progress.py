"""Quiet by default: an operation run here shows its steps and their outcomes; platform
tasks only with -v, skipped tasks only with -vv; osp-ops' own info lines always."""

from __future__ import annotations

import pytest

from osp_ops.cli.output import ConsoleProgress
from osp_ops.platforms.base import Event

pytestmark = pytest.mark.unit

EVENTS = [
    Event("Ensure the tenant's vhost is present.", host="web1", status="changed"),
    Event("Ensure the virtualenv exists.", host="web1", status="ok"),
    Event("Install Decidim's packages.", host="web1", status="skipped"),
    Event("restore: 12 MiB read", status="info"),
]


def _shown(verbose: int, capsys: pytest.CaptureFixture[str]) -> list[str]:
    progress = ConsoleProgress(verbose=verbose)
    for e in EVENTS:
        progress.event("deploy", e)
    progress.step("deploy", "done", detail="changed=1")
    progress.close()
    return [line.strip() for line in capsys.readouterr().out.splitlines() if line.strip()]


def test_default_shows_steps_and_info_only(capsys: pytest.CaptureFixture[str]) -> None:
    assert _shown(0, capsys) == ["info     restore: 12 MiB read", "✓ deploy  changed=1"]


def test_v_shows_platform_tasks_but_not_skipped_ones(capsys: pytest.CaptureFixture[str]) -> None:
    shown = "\n".join(_shown(1, capsys))
    assert "changed  [web1] Ensure the tenant's vhost is present." in shown
    assert "ok       [web1] Ensure the virtualenv exists." in shown
    assert "Decidim" not in shown


def test_vv_shows_skipped_tasks_too(capsys: pytest.CaptureFixture[str]) -> None:
    assert "skipped  [web1] Install Decidim's packages." in "\n".join(_shown(2, capsys))
