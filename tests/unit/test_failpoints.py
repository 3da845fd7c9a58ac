"""One failpoints module for every layer: OSP_OPS_FAILPOINT names which points kill."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from osp_ops import failpoints

pytestmark = pytest.mark.unit


def test_armed_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(failpoints.ENV, raising=False)
    assert not failpoints.armed("before-step:deploy")
    monkeypatch.setenv(failpoints.ENV, "backup:mid-part,kube-apply:6")
    assert failpoints.armed("kube-apply:6") and failpoints.armed("backup:mid-part")
    assert not failpoints.armed("kube-apply:60") and not failpoints.armed("")
    failpoints.hit("after-step:deploy")  # not armed: returns


def test_hit_kills_with_sigkill() -> None:
    code = "from osp_ops import failpoints; failpoints.hit('kube-apply:2'); print('alive')"
    env = {**os.environ, failpoints.ENV: "kube-apply:1,kube-apply:2"}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL and "alive" not in proc.stdout
