"""Fixtures of the Kubernetes platform tests: settings pointing at the operator's
RBAC-bound kubeconfig and at the shared PostgreSQL server, the platform, an engine
context. The operator's kubeconfig and the admin helpers are in
tests/fixtures/k8s_operator.py; the tenant spec is tests.factories.kube_spec.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from osp_ops.domain.catalog import default_catalog
from osp_ops.domain.spec import TenantSpec
from osp_ops.engine.api import request
from osp_ops.engine.context import Context, build_context
from osp_ops.engine.runner import run_operation
from osp_ops.platforms.kubernetes import KubernetesPlatform
from osp_ops.settings import Settings
from tests.fixtures.k8s_operator import (
    OVERLAY,
    STORAGE_CLASS,
    admin,
    helm_binary,
    operator_kubeconfig,
)
from tests.fixtures.kube import KubeCluster
from tests.fixtures.postgres import PostgresServer

__all__ = ["operator_kubeconfig"]  # the session fixture, for every test below


@pytest.fixture(scope="session")
def storage_class(kube: KubeCluster) -> str:
    admin(kube).apply(
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {"name": STORAGE_CLASS},
            "provisioner": "kubernetes.io/no-provisioner",
            "volumeBindingMode": "Immediate",
        },
        force=True,
    )
    return STORAGE_CLASS


@pytest.fixture(scope="session")
def make_settings(
    operator_kubeconfig: Path, postgres: PostgresServer, storage_class: str
) -> Callable[[Path], Settings]:
    """``make_settings(root)``: the operator's settings, data (with the chart values
    overlay) and tenants under ``root``."""

    def make(root: Path) -> Settings:
        data = root / "data"
        data.mkdir()
        (data / "kubernetes-values.yaml").write_text(yaml.safe_dump(OVERLAY))
        return Settings(
            data_dir=data,
            tenants_dir=root / "tenants",
            kubeconfig=operator_kubeconfig,
            platform_db_admin_dsn=postgres.dsn,  # type: ignore[arg-type]
            helm_binary=helm_binary(),
            default_platform="kubernetes",
            tls_mode="none",  # type: ignore[arg-type]
            step_max_attempts=1,
            retry_base_delay=0,
        )

    return make


@pytest.fixture
def settings(tmp_path: Path, make_settings: Callable[[Path], Settings]) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def platform(settings: Settings) -> Iterator[KubernetesPlatform]:
    p = KubernetesPlatform(
        settings=settings, catalog=default_catalog(), poll_interval=0.2, rollout_timeout=180
    )
    try:
        yield p
    finally:
        p.close()


@pytest.fixture
def ctx(settings: Settings, platform: KubernetesPlatform) -> Context:
    return build_context(settings, actor="test", platform_factory=lambda spec: platform)


@pytest.fixture
def run(ctx: Context) -> Callable[..., Any]:
    """``run(kind, spec)``: request and run an operation through the engine."""

    def go(kind: str, spec: TenantSpec, **kw: Any) -> Any:
        op, _ = request(ctx, kind, spec, **kw)
        return run_operation(ctx, op.id)

    return go
