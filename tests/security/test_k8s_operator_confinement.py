"""The operator's ServiceAccount is confined (deploy/rbac/operator.yaml and
admission-policy.yaml, on the test control plane): cluster-wide it manages tenant
namespaces only; Secrets and workloads only in namespaces where osp-ops bound
ClusterRole osp-ops-tenant; no token Secret, no Pod Security level but restricted, no
host namespaces, hostPath or privileged container, no RoleBinding but its own.

Every write probe is a server-side dry run: RBAC and admission run, nothing is stored.
The probes are printed as a table (``-s`` shows it).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from osp_ops.platforms.kubernetes import ApiError, Kube
from osp_ops.render import manifests as mf
from tests.fixtures.k8s_operator import admin, operator_kubeconfig
from tests.fixtures.kube import KubeCluster

__all__ = ["operator_kubeconfig"]  # the fixture, imported for this module

pytestmark = pytest.mark.k8s

TENANT_NS = "osp-confined"
FOREIGN_NS = "osp-foreign"
PROBES: list[tuple[str, str, str]] = []

JOB: dict[str, Any] = {
    "apiVersion": "batch/v1",
    "kind": "Job",
    "metadata": {"name": "probe"},
    "spec": {
        "template": {
            "spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "c", "image": "busybox", "command": ["true"]}],
            }
        }
    },
}


@pytest.fixture(scope="module")
def operator(kube: KubeCluster, operator_kubeconfig: Path) -> Iterator[Kube]:
    """The operator's client, with a tenant namespace set up as osp-ops does it (as admin:
    the namespace with the tenant label, the RoleBinding) and a foreign namespace."""
    root = admin(kube)
    labels = {"app.kubernetes.io/managed-by": "osp-ops", "osp-ops.io/tenant": "confined"}
    root.apply(mf.namespace_object(TENANT_NS, labels), force=True)
    binding = mf.operator_role_binding(labels)
    binding["metadata"]["namespace"] = TENANT_NS
    root.apply(binding, force=True)
    root.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": FOREIGN_NS}},
               force=True)  # fmt: skip
    client = Kube(kube.api_client(operator_kubeconfig))
    try:
        yield client
    finally:
        client.api.close()  # type: ignore[no-untyped-call]
        if PROBES:
            width = max(len(what) for what, _, _ in PROBES)
            print("\noperator ServiceAccount probes:")
            for what, outcome, by in PROBES:
                print(f"  {what:<{width}}  {outcome:<8} {by}")


def attempt(client: Kube, what: str, method: str, path: str, body: Any = None,
            *, expect: str | tuple[str, ...], patch: bool = False) -> None:  # fmt: skip
    """One probe: expect 'allowed', 'rbac' (403 by the authorizer) or 'policy' (refused
    by the admission policy), or one of several."""
    query = [("dryRun", "All")] if method != "GET" else []
    kw: dict[str, Any] = {"query": query}
    if body is not None:
        kw["body"] = body
    if patch:
        kw["content_type"] = "application/merge-patch+json"
    try:
        client.request(method, path, **kw)
        outcome, by, message = "allowed", "", ""
    except ApiError as e:
        outcome, message = "denied", e.message
        by = "policy" if "osp-ops may" in e.message else "rbac" if e.status == 403 else "other"
        if by == "other":
            raise
    PROBES.append((what, outcome, by))
    assert (by or "allowed") in ((expect,) if isinstance(expect, str) else expect), (
        f"{what}: {outcome} ({by}) {message}"
    )


def _secret(namespace: str, token: bool) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "probe", "namespace": namespace}
    if token:
        meta["annotations"] = {"kubernetes.io/service-account.name": "default"}
    kind = "kubernetes.io/service-account-token" if token else "Opaque"
    return {"apiVersion": "v1", "kind": "Secret", "type": kind, "metadata": meta}


def _job(namespace: str, **pod: Any) -> dict[str, Any]:
    job = copy.deepcopy(JOB)
    job["metadata"]["namespace"] = namespace
    spec = job["spec"]["template"]["spec"]
    spec.update({k: v for k, v in pod.items() if k != "container"})
    spec["containers"][0].update(pod.get("container", {}))
    return job


def test_token_secrets_are_denied_everywhere(operator: Kube) -> None:
    ns = f"/api/v1/namespaces/{TENANT_NS}/secrets"
    attempt(operator, "create an Opaque Secret in a tenant namespace", "POST", ns,
            _secret(TENANT_NS, token=False), expect="allowed")  # fmt: skip
    attempt(operator, "create a token Secret in a tenant namespace", "POST", ns,
            _secret(TENANT_NS, token=True), expect="policy")  # fmt: skip
    attempt(operator, "create a token Secret in kube-system", "POST",
            "/api/v1/namespaces/kube-system/secrets", _secret("kube-system", token=True),
            expect="rbac")  # fmt: skip
    attempt(operator, "list Secrets in kube-system", "GET",
            "/api/v1/namespaces/kube-system/secrets", expect="rbac")  # fmt: skip
    attempt(operator, "list Secrets in all namespaces", "GET", "/api/v1/secrets", expect="rbac")
    attempt(operator, "list ClusterRoleBindings", "GET",
            "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", expect="rbac")  # fmt: skip


@pytest.mark.parametrize(
    ("what", "pod"),
    [
        ("hostPath /", {"volumes": [{"name": "h", "hostPath": {"path": "/"}}]}),
        ("hostNetwork", {"hostNetwork": True}),
        ("hostPID", {"hostPID": True}),
        ("hostIPC", {"hostIPC": True}),
        ("a privileged container", {"container": {"securityContext": {"privileged": True}}}),
    ],
)
def test_pods_reaching_the_host_are_denied(operator: Kube, what: str, pod: Any) -> None:
    jobs = "/apis/batch/v1/namespaces/{}/jobs"
    attempt(operator, f"create a Job with {what} in a tenant namespace", "POST",
            jobs.format(TENANT_NS), _job(TENANT_NS, **pod), expect="policy")  # fmt: skip
    attempt(operator, f"create a Job with {what} in kube-system", "POST",
            jobs.format("kube-system"), _job("kube-system", **pod), expect="rbac")  # fmt: skip


def test_pods_and_plain_jobs(operator: Kube) -> None:
    attempt(operator, "create a plain Job in a tenant namespace", "POST",
            f"/apis/batch/v1/namespaces/{TENANT_NS}/jobs", _job(TENANT_NS), expect="allowed")  # fmt: skip
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": TENANT_NS},
           "spec": {"containers": [{"name": "c", "image": "busybox",
                                    "securityContext": {"privileged": True}}]}}  # fmt: skip
    attempt(operator, "create a privileged Pod in a tenant namespace", "POST",
            f"/api/v1/namespaces/{TENANT_NS}/pods", pod, expect="rbac")  # fmt: skip


def test_namespaces_without_the_tenant_label_are_out_of_reach(operator: Kube) -> None:
    nss = "/api/v1/namespaces"
    bare = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "osp-bare"}}
    attempt(operator, "create a namespace without the tenant label", "POST", nss, bare,
            expect="policy")  # fmt: skip
    labels = {"osp-ops.io/tenant": "other", "pod-security.kubernetes.io/enforce": "restricted"}
    wrong = {"apiVersion": "v1", "kind": "Namespace",
             "metadata": {"name": "kube-other", "labels": labels}}  # fmt: skip
    attempt(operator, "create a tenant-labelled namespace not named osp-<tenant>", "POST",
            nss, wrong, expect="policy")  # fmt: skip
    tenant = mf.namespace_object("osp-newcomer", {"osp-ops.io/tenant": "newcomer"})
    attempt(operator, "create a tenant namespace", "POST", nss, tenant, expect="allowed")
    label = {"metadata": {"labels": {"osp-ops.io/tenant": "foreign"}}}
    for ns in (FOREIGN_NS, "default", "kube-system"):
        attempt(operator, f"label {ns} as a tenant", "PATCH", f"{nss}/{ns}", label,
                patch=True, expect="policy")  # fmt: skip
    # (default and kube-system cannot be deleted by anyone: NamespaceLifecycle.)
    attempt(operator, f"delete {FOREIGN_NS}", "DELETE", f"{nss}/{FOREIGN_NS}", expect="policy")
    attempt(operator, f"delete {TENANT_NS}", "DELETE", f"{nss}/{TENANT_NS}", expect="allowed")
    attempt(operator, "create a ConfigMap in a namespace without the tenant label", "POST",
            f"{nss}/{FOREIGN_NS}/configmaps",
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}},
            expect="rbac")  # fmt: skip


@pytest.mark.parametrize("label", ["enforce", "warn", "audit"])
def test_pod_security_stays_restricted(operator: Kube, label: str) -> None:
    path = f"/api/v1/namespaces/{TENANT_NS}"
    relabel = {"metadata": {"labels": {f"pod-security.kubernetes.io/{label}": "privileged"}}}
    attempt(operator, f"relabel a tenant namespace {label}=privileged", "PATCH", path, relabel,
            patch=True, expect="policy")  # fmt: skip
    if label == "enforce":
        drop = {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": None}}}
        attempt(operator, "remove a tenant namespace's enforce label", "PATCH", path, drop,
                patch=True, expect="policy")  # fmt: skip


def test_role_bindings_only_give_the_operator_its_tenant_role(operator: Kube) -> None:
    path = "/apis/rbac.authorization.k8s.io/v1/namespaces/{}/rolebindings"
    own = mf.operator_role_binding({"osp-ops.io/tenant": "confined"})
    own["metadata"]["name"] = "probe"
    attempt(operator, "bind osp-ops-tenant to itself in a tenant namespace", "POST",
            path.format(TENANT_NS), own, expect="allowed")  # fmt: skip
    to_tenant = copy.deepcopy(own)
    to_tenant["subjects"] = [{"kind": "ServiceAccount", "name": "decidim", "namespace": TENANT_NS}]
    attempt(operator, "bind osp-ops-tenant to the tenant's ServiceAccount", "POST",
            path.format(TENANT_NS), to_tenant, expect="policy")  # fmt: skip
    elsewhere = copy.deepcopy(own)
    elsewhere["metadata"]["namespace"] = "kube-system"
    attempt(operator, "bind osp-ops-tenant to itself in kube-system", "POST",
            path.format("kube-system"), elsewhere, expect="policy")  # fmt: skip
    admin_role = copy.deepcopy(own)
    admin_role["roleRef"]["name"] = "cluster-admin"
    attempt(operator, "bind cluster-admin to itself in a tenant namespace", "POST",
            path.format(TENANT_NS), admin_role, expect=("rbac", "policy"))  # fmt: skip
