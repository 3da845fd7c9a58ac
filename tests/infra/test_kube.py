"""Smoke test of the kube fixture: RBAC, server-side apply, controllers, kwok, PodSecurity."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.fixtures.kube import KubeCluster
from tests.fixtures.procs import wait_until

pytestmark = [pytest.mark.infra, pytest.mark.k8s]

RESTRICTED_POD_SPEC: dict[str, Any] = {
    "securityContext": {"runAsNonRoot": True, "runAsUser": 10001,
                        "seccompProfile": {"type": "RuntimeDefault"}},
    "containers": [{
        "name": "app",
        "image": "registry.invalid/app:1.0",
        "securityContext": {"allowPrivilegeEscalation": False,
                            "capabilities": {"drop": ["ALL"]}},
    }],
}  # fmt: skip


@pytest.fixture
def admin(kube: KubeCluster) -> Iterator[client.ApiClient]:
    with kube.api_client() as api:
        yield api


@pytest.fixture
def namespace(admin: client.ApiClient) -> Iterator[str]:
    name = f"smoke-{secrets.token_hex(4)}"
    core = client.CoreV1Api(admin)
    core.create_namespace({"metadata": {"name": name}})
    yield name
    try:
        core.delete_namespace(name)
    except ApiException as e:
        if e.status != 404:
            raise


def _deployer(kube: KubeCluster, admin: client.ApiClient, ns: str) -> client.ApiClient:
    """A ServiceAccount allowed to manage Deployments and Jobs only, and a client for it."""
    client.CoreV1Api(admin).create_namespaced_service_account(
        ns, {"metadata": {"name": "deployer"}}
    )
    rbac = client.RbacAuthorizationV1Api(admin)
    rbac.create_namespaced_role(ns, {
        "metadata": {"name": "deployer"},
        "rules": [
            {"apiGroups": ["apps"], "resources": ["deployments"],
             "verbs": ["get", "list", "watch", "create", "patch", "update"]},
            {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["get", "create"]},
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]},
        ],
    })  # fmt: skip
    rbac.create_namespaced_role_binding(ns, {
        "metadata": {"name": "deployer"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "deployer"},
        "subjects": [{"kind": "ServiceAccount", "name": "deployer", "namespace": ns}],
    })  # fmt: skip
    return kube.api_client(kube.kubeconfig_for_service_account(ns, "deployer"))


def test_deployment_job_rbac_and_namespace_deletion(
    kube: KubeCluster, admin: client.ApiClient, namespace: str
) -> None:
    ns = namespace
    with _deployer(kube, admin, ns) as sa:
        apps = client.AppsV1Api(sa)
        labels = {"app.kubernetes.io/name": "smoke"}
        deployment = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "smoke", "namespace": ns, "labels": labels},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": labels}, "spec": RESTRICTED_POD_SPEC},
            },
        }
        apps.patch_namespaced_deployment(
            "smoke", ns, deployment, field_manager="osp-ops", force=True,
            _content_type="application/apply-patch+yaml",
        )  # fmt: skip
        managers = {
            m.manager: m.operation
            for m in apps.read_namespaced_deployment("smoke", ns).metadata.managed_fields
        }
        assert managers["osp-ops"] == "Apply"

        def available() -> bool:
            d = apps.read_namespaced_deployment("smoke", ns)
            conds = {c.type: c.status for c in (d.status.conditions or [])}
            return conds.get("Available") == "True" and d.status.available_replicas == 2

        wait_until(available, timeout=90, what="Deployment smoke Available")
        rs = client.AppsV1Api(admin).list_namespaced_replica_set(ns).items
        assert [r.metadata.owner_references[0].name for r in rs] == ["smoke"]
        pods = client.CoreV1Api(sa).list_namespaced_pod(ns).items
        assert len(pods) == 2
        assert {p.status.phase for p in pods} == {"Running"}
        assert {p.spec.node_name for p in pods} <= set(kube.node_names)

        batch = client.BatchV1Api(sa)
        batch.create_namespaced_job(ns, {
            "metadata": {"name": "once"},
            "spec": {"backoffLimit": 0, "template": {
                "spec": {**RESTRICTED_POD_SPEC, "restartPolicy": "Never"}}},
        })  # fmt: skip

        def complete() -> bool:
            j = batch.read_namespaced_job("once", ns)
            conds = {c.type: c.status for c in (j.status.conditions or [])}
            return conds.get("Complete") == "True" and j.status.succeeded == 1

        wait_until(complete, timeout=90, what="Job once Complete")

        with pytest.raises(ApiException) as forbidden:
            apps.delete_namespaced_deployment("smoke", ns)
        assert forbidden.value.status == 403
        with pytest.raises(ApiException) as forbidden:
            client.CoreV1Api(sa).list_namespaced_secret(ns)
        assert forbidden.value.status == 403

    core = client.CoreV1Api(admin)
    core.delete_namespace(ns)

    def gone() -> bool:
        try:
            core.read_namespace(ns)
        except ApiException as e:
            return e.status == 404
        return False

    wait_until(gone, timeout=120, what=f"namespace {ns} to be deleted")


def test_pod_security_restricted_rejects_violating_pod(
    admin: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(admin)
    core.patch_namespace(namespace, {"metadata": {"labels": {
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/enforce-version": "latest",
    }}})  # fmt: skip
    # Root, privilege escalation, capabilities and seccomp all left at their defaults.
    bad = {
        "metadata": {"name": "unrestricted"},
        "spec": {"containers": [{"name": "app", "image": "registry.invalid/app:1.0"}]},
    }
    with pytest.raises(ApiException) as rejected:
        core.create_namespaced_pod(namespace, bad)
    assert rejected.value.status == 403
    message = json.loads(rejected.value.body)["message"]
    assert 'violates PodSecurity "restricted:latest"' in message
    good = {"metadata": {"name": "fine"}, "spec": RESTRICTED_POD_SPEC}
    core.create_namespaced_pod(namespace, good)


def test_service_account_kubeconfig_identity(
    kube: KubeCluster, admin: client.ApiClient, namespace: str
) -> None:
    client.CoreV1Api(admin).create_namespaced_service_account(
        namespace, {"metadata": {"name": "who"}}
    )
    path = kube.kubeconfig_for_service_account(namespace, "who")
    with kube.api_client(path) as sa:
        review = client.AuthenticationV1Api(sa).create_self_subject_review({})
    assert review.status.user_info.username == f"system:serviceaccount:{namespace}:who"
