"""Fixtures of the Kubernetes platform tests: the operator's RBAC-bound kubeconfig,
settings pointing at it and at the shared PostgreSQL server, and an engine context.

The platform runs as the ServiceAccount osp-ops-system/osp-ops with exactly the RBAC of
deploy/rbac/operator.yaml (the per-namespace rights come from the RoleBinding osp-ops
creates with each tenant namespace) under the admission policy of
deploy/rbac/admission-policy.yaml; the tests inspect the cluster as admin.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from osp_ops.domain.catalog import default_catalog
from osp_ops.domain.spec import TenantSpec, validate_spec
from osp_ops.engine.api import request
from osp_ops.engine.context import Context, build_context
from osp_ops.engine.runner import run_operation
from osp_ops.platforms.kubernetes import ApiError, Kube, KubernetesPlatform
from osp_ops.settings import Settings
from tests.fixtures.kube import KubeCluster
from tests.fixtures.postgres import PostgresServer

REPO = Path(__file__).resolve().parents[2]
RBAC = REPO / "deploy" / "rbac" / "operator.yaml"
ADMISSION_POLICY = REPO / "deploy" / "rbac" / "admission-policy.yaml"
STORAGE_CLASS = "osp-ops-test"

# Operator-wide chart values of the tests: PVCs of a class whose volumes the tests
# create (there is no provisioner in the test cluster), no TLS issuer.
OVERLAY: dict[str, Any] = {
    "storage": {"pvc": {"storageClass": STORAGE_CLASS, "accessModes": ["ReadWriteMany"]}}
}


def helm_binary() -> str:
    for candidate in (
        os.environ.get("OSP_OPS_HELM"),
        shutil.which("helm"),
        str(Path.home() / ".cache" / "osp-ops" / "testbin" / "bin" / "helm"),
    ):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail("helm not found: run scripts/testbin or set OSP_OPS_HELM", pytrace=False)


def admin(kube: KubeCluster) -> Kube:
    """An admin client (system:masters), for setting up and inspecting only."""
    return Kube(kube.api_client())


def apply_file(client: Kube, path: Path) -> None:
    for doc in yaml.safe_load_all(path.read_text()):
        if doc:
            client.apply(doc, force=True)


@pytest.fixture(scope="session")
def operator_kubeconfig(kube: KubeCluster) -> Path:
    """A kubeconfig of the operator's ServiceAccount, bound to deploy/rbac/operator.yaml
    and confined by deploy/rbac/admission-policy.yaml."""
    apply_file(admin(kube), RBAC)
    apply_file(admin(kube), ADMISSION_POLICY)
    wait_for_admission_policy(kube)
    return kube.kubeconfig_for_service_account("osp-ops-system", "osp-ops")


def wait_for_admission_policy(kube: KubeCluster, timeout: float = 30) -> None:
    """Until the API server enforces the policy (it loads policies from an informer):
    the operator's dry-run create of a namespace without the tenant label is refused."""
    kc = kube.kubeconfig_for_service_account("osp-ops-system", "osp-ops")
    client = Kube(kube.api_client(kc))
    probe = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "osp-probe"}}
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                client.request("POST", "/api/v1/namespaces", query=[("dryRun", "All")], body=probe)
            except ApiError as e:
                if "osp-ops may" in e.message:
                    return
                raise
            if time.monotonic() > deadline:
                pytest.fail("the admission policy osp-ops-operator is not enforced")
            time.sleep(0.2)
    finally:
        client.api.close()  # type: ignore[no-untyped-call]


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


def make_volume(kube: KubeCluster, slug: str, size: str = "10Gi") -> None:
    """A PersistentVolume for the tenant's uploads claim (no provisioner here)."""
    admin(kube).apply(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": f"pv-{slug}"},
            "spec": {
                "capacity": {"storage": size},
                "accessModes": ["ReadWriteOnce", "ReadWriteMany"],
                "storageClassName": STORAGE_CLASS,
                "persistentVolumeReclaimPolicy": "Delete",
                "hostPath": {"path": f"/tmp/osp-ops-pv/{slug}"},
                "claimRef": {"namespace": f"osp-{slug}", "name": "decidim-storage"},
            },
        },
        force=True,
    )


@pytest.fixture
def settings(
    tmp_path: Path, operator_kubeconfig: Path, postgres: PostgresServer, storage_class: str
) -> Settings:
    data = tmp_path / "data"
    data.mkdir()
    (data / "kubernetes-values.yaml").write_text(yaml.safe_dump(OVERLAY))
    return Settings(
        data_dir=data,
        tenants_dir=tmp_path / "tenants",
        kubeconfig=operator_kubeconfig,
        platform_db_admin_dsn=postgres.dsn,  # type: ignore[arg-type]
        helm_binary=helm_binary(),
        default_platform="kubernetes",
        tls_mode="none",  # type: ignore[arg-type]
        step_max_attempts=1,
        retry_base_delay=0,
    )


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


def tenant_spec(slug: str, **over: Any) -> TenantSpec:
    data: dict[str, Any] = {
        "slug": slug,
        "name": slug.title(),
        "app": {"name": "decidim", "version": "0.28.4"},
        "hosts": {"primary": f"participer.{slug}.example.org"},
        "admin": {"name": "Admin", "email": f"admin@{slug}.example.org"},
        "platform": {"kind": "kubernetes"},
        "locales": {"default": "fr", "available": ["fr", "en"]},
    }
    data.update(over)
    return validate_spec(data, source=f"test {slug}")


@pytest.fixture
def run(ctx: Context) -> Callable[..., Any]:
    """``run(kind, spec)``: request and run an operation through the engine."""

    def go(kind: str, spec: TenantSpec, **kw: Any) -> Any:
        op, _ = request(ctx, kind, spec, **kw)
        return run_operation(ctx, op.id)

    return go
