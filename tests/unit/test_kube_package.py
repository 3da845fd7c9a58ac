"""The Kubernetes platform package: exports loaded on first use, buckets without S3."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import osp_ops.platforms.kubernetes as kubernetes_platform
from osp_ops.platforms.base import Event
from osp_ops.platforms.kubernetes.buckets import TenantBuckets
from osp_ops.settings import Settings
from tests.factories import kube_spec

pytestmark = pytest.mark.unit


def test_importing_the_package_or_buckets_loads_no_client() -> None:
    code = (
        "import sys\n"
        "import osp_ops.platforms.kubernetes, osp_ops.platforms.kubernetes.buckets\n"
        "print(sorted(m for m in ('kubernetes', 'boto3') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "[]"


def test_exports_come_from_their_modules() -> None:
    from osp_ops.platforms.kubernetes import client, platform, render

    assert kubernetes_platform.KubernetesPlatform is platform.KubernetesPlatform
    assert kubernetes_platform.ApiError is client.ApiError
    assert kubernetes_platform.Kube is client.Kube
    assert kubernetes_platform.Rendered is render.Rendered
    for name in kubernetes_platform.__all__:
        assert getattr(kubernetes_platform, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        _ = kubernetes_platform.nothing


def test_without_s3_storage_buckets_change_nothing(tmp_path: Path) -> None:
    buckets = TenantBuckets(Settings(data_dir=tmp_path))  # app_storage: volume
    events: list[Event] = []
    assert not buckets.enabled
    assert buckets.ensure(kube_spec("lyon"), events.append) == 0
    assert buckets.delete(kube_spec("lyon"), events.append) == 0
    assert events == []
