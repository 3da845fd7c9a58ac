"""The product's helm: scripts/install-helm (run by scripts/install-deps) installs the
pinned helm where osp-ops looks by default, so `osp-ops tenant render` works with no
test binary on PATH and no helm setting. Needs no cluster."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from osp_ops.engine.context import build_context
from osp_ops.settings import Settings
from tests.factories import kube_spec
from tests.fixtures.k8s_operator import OVERLAY

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
# What install-helm needs to find the build cache and a Go toolchain; nothing else of
# osp-ops' own environment (OSP_OPS_TESTBIN, OSP_OPS_HELM_BINARY...) reaches the CLI.
KEEP = ("OSP_OPS_TESTBIN_CACHE", "OSP_OPS_GO", "OSP_OPS_GO_CACHE", "OSP_OPS_GO_BOOTSTRAP")


def product_env(xdg: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OSP_OPS_") or k in KEEP}
    # No directory on PATH holds a helm: the installed one is the only one.
    path = os.environ.get("PATH", os.defpath).split(os.pathsep)
    env["PATH"] = os.pathsep.join(d for d in path if d and not (Path(d) / "helm").exists())
    env["XDG_DATA_HOME"] = str(xdg)
    return env


def render(env: dict[str, str], tmp_path: Path, out: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **env,
        "OSP_OPS_DATA_DIR": str(tmp_path / "data"),
        "OSP_OPS_TENANTS_DIR": str(tmp_path / "tenants"),
        "OSP_OPS_TLS_MODE": "none",
        "OSP_OPS_PLATFORM_DB_ADMIN_DSN": "postgresql://admin:pw@10.1.2.3:5432/postgres",
    }
    argv = [sys.executable, "-m", "osp_ops.cli", "tenant", "render", "lyon", "--out", str(out)]
    return subprocess.run(
        argv, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False
    )


@pytest.mark.timeout(3600)  # a cold helm build; after scripts/testbin it is a copy
def test_tenant_render_uses_the_installed_helm(tmp_path: Path) -> None:
    ctx = build_context(
        Settings(data_dir=tmp_path / "data", tenants_dir=tmp_path / "tenants"), actor="test"
    )
    ctx.specs.write(kube_spec("lyon"))
    (tmp_path / "data" / "kubernetes-values.yaml").write_text(yaml.safe_dump(OVERLAY))
    xdg = tmp_path / "xdg"
    env = product_env(xdg)

    missing = render(env, tmp_path, tmp_path / "gitops")
    assert missing.returncode == 1
    assert "run scripts/install-helm" in missing.stderr

    subprocess.run([REPO / "scripts" / "install-helm"], env=env, check=True, timeout=3500)
    installed = xdg / "osp-ops" / "bin" / "helm"
    assert os.access(installed, os.X_OK)
    start = time.monotonic()
    again = subprocess.run(
        [REPO / "scripts" / "install-helm"], env=env, capture_output=True, text=True, check=True
    )
    assert again.stdout == "" and again.stderr == ""  # installed: a stamp check, silent
    assert time.monotonic() - start < 10

    done = render(env, tmp_path, tmp_path / "gitops")
    assert done.returncode == 0, done.stdout + done.stderr
    files = sorted(p.name for p in (tmp_path / "gitops" / "lyon").iterdir())
    assert files[0] == "01-namespace-osp-lyon.yaml"
    kinds = {yaml.safe_load((tmp_path / "gitops" / "lyon" / f).read_text())["kind"] for f in files}
    assert {"Deployment", "Service", "ConfigMap"} <= kinds
