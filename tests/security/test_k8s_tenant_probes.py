"""Tenant A's ServiceAccount against tenant B and its own namespace (issue 13, item 10),
on the test control plane: two tenants provisioned and deployed by the platform as the
operator's ServiceAccount, then A's ServiceAccount (``decidim``) with a token, as a
compromised pod of A would hold one if it mounted it (the chart sets
``automountServiceAccountToken: false``). It has no API rights at all.

Every write probe is a server-side dry run. The probes are printed as a table (``-s``).
The network side (A's pods reaching B's) is evaluated on the rendered NetworkPolicies in
tests/charts/test_network_matrix.py: kwok runs no CNI that would enforce them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from osp_ops.domain.catalog import default_catalog
from osp_ops.platforms.base import null_reporter
from osp_ops.platforms.kubernetes import ApiError, Kube, KubernetesPlatform
from osp_ops.settings import Settings
from tests.factories import kube_spec
from tests.fixtures.k8s_operator import OVERLAY, helm_binary, operator_kubeconfig
from tests.fixtures.kube import KubeCluster
from tests.fixtures.postgres import PostgresServer

__all__ = ["operator_kubeconfig"]  # the fixture, imported for this module

pytestmark = pytest.mark.k8s

A, B = "probea", "probeb"
SECRETS = {"db_password": "pw-probe", "secret_key": "sk-" + "x" * 60, "admin_password": "adm"}
PROBES: list[tuple[str, str, str]] = []


@pytest.fixture(scope="module")
def tenant_a(
    kube: KubeCluster,
    postgres: PostgresServer,
    operator_kubeconfig: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Kube]:
    """Tenants A and B provisioned and deployed (no rollout wait: their pods do not
    matter here), and a client authenticated as A's ServiceAccount."""
    root = tmp_path_factory.mktemp("probes")
    (root / "data").mkdir()
    (root / "data" / "kubernetes-values.yaml").write_text(yaml.safe_dump(OVERLAY))
    settings = Settings(
        data_dir=root / "data",
        tenants_dir=root / "tenants",
        kubeconfig=operator_kubeconfig,
        platform_db_admin_dsn=postgres.dsn,  # type: ignore[arg-type]
        helm_binary=helm_binary(),
        tls_mode="none",  # type: ignore[arg-type]
    )
    platform = KubernetesPlatform(settings=settings, catalog=default_catalog(), wait=False)
    try:
        for slug in (A, B):
            spec = kube_spec(slug)
            platform.provision(spec=spec, secrets=SECRETS, reporter=null_reporter)
            platform.deploy(spec=spec, version="0.28.4", secrets=SECRETS, reporter=null_reporter)
    finally:
        platform.close()
    client = Kube(kube.api_client(kube.kubeconfig_for_service_account(f"osp-{A}", "decidim")))
    try:
        yield client
    finally:
        client.close()
        if PROBES:
            width = max(len(what) for what, _, _ in PROBES)
            print(f"\ntenant {A}'s ServiceAccount probes:")
            for what, outcome, by in PROBES:
                print(f"  {what:<{width}}  {outcome:<8} {by}")


def probe(client: Kube, what: str, method: str, path: str, body: Any = None) -> None:
    """One probe that must be denied by RBAC (403 from the authorizer)."""
    kw: dict[str, Any] = {"query": [("dryRun", "All")] if method != "GET" else []}
    if body is not None:
        kw["body"] = body
    if method == "PATCH":
        kw["content_type"] = "application/merge-patch+json"
    try:
        client.request(method, path, **kw)
        outcome, by = "allowed", ""
    except ApiError as e:
        rbac = e.status == 403 and " cannot " in e.message  # the authorizer's wording
        outcome, by = "denied", "rbac" if rbac else f"{e.status} {e.message}"
    PROBES.append((what, outcome, by))
    assert (outcome, by) == ("denied", "rbac"), what


def _pod(namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "probe", "namespace": namespace},
        "spec": {"containers": [{"name": "c", "image": "busybox", "command": ["true"]}]},
    }


def _token_request() -> dict[str, Any]:
    return {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}}


@pytest.mark.parametrize(("whose", "slug"), [("B's", B), ("its own", A)])
def test_a_tenant_service_account_reads_no_secret(tenant_a: Kube, whose: str, slug: str) -> None:
    ns = f"/api/v1/namespaces/osp-{slug}"
    probe(tenant_a, f"read {whose} Secret decidim-secrets", "GET", f"{ns}/secrets/decidim-secrets")
    probe(tenant_a, f"list {whose} Secrets", "GET", f"{ns}/secrets")
    probe(tenant_a, f"list {whose} ConfigMaps", "GET", f"{ns}/configmaps")


@pytest.mark.parametrize(("whose", "slug"), [("B's", B), ("its own", A)])
def test_a_tenant_service_account_creates_no_pod(tenant_a: Kube, whose: str, slug: str) -> None:
    ns = f"/api/v1/namespaces/osp-{slug}"
    probe(tenant_a, f"create a pod in {whose} namespace", "POST", f"{ns}/pods", _pod(f"osp-{slug}"))
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "probe", "namespace": f"osp-{slug}"},
        "spec": {"template": {"spec": {"restartPolicy": "Never", **_pod("x")["spec"]}}},
    }
    probe(tenant_a, f"create a Job in {whose} namespace", "POST",
          f"/apis/batch/v1/namespaces/osp-{slug}/jobs", job)  # fmt: skip
    probe(tenant_a, f"request a token of {whose} ServiceAccount", "POST",
          f"{ns}/serviceaccounts/decidim/token", _token_request())  # fmt: skip


def test_a_tenant_service_account_changes_no_policy_or_binding(tenant_a: Kube) -> None:
    ns = f"osp-{A}"
    probe(tenant_a, "patch its own namespace's labels", "PATCH", f"/api/v1/namespaces/{ns}",
          {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "privileged"}}})  # fmt: skip
    probe(tenant_a, "delete its own deny-all NetworkPolicy", "DELETE",
          f"/apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies/decidim-default-deny")  # fmt: skip
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "probe", "namespace": ns},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
        "subjects": [{"kind": "ServiceAccount", "name": "decidim", "namespace": ns}],
    }
    probe(tenant_a, "bind ClusterRole edit to itself", "POST",
          f"/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings", binding)  # fmt: skip
    probe(tenant_a, "list namespaces", "GET", "/api/v1/namespaces")
