"""Drift on security-relevant objects (issue 13, item 8), on the test control plane.

A hand edit (as admin) that opens a tenant's NetworkPolicy, relabels its namespace
``privileged``, adds a subject to the operator's RoleBinding, lets the tenant's pods
mount a token, or raises its quota and limits is found by ``KubernetesPlatform.drift``
without writing anything, and ``tenant apply`` restores each object, says so (an event
"<Kind>/<name>: drift restored") and counts it as a change; the next apply writes
nothing. A NetworkPolicy added by hand without the tenant label is reported, and left
in place. One tenant for the module: creating one is the slow part.

The chart renders no Role (the tenant's pods get no API rights at all, and the
operator may not read Roles): the RBAC objects watched are the operator's RoleBinding
osp-ops creates and the chart's ServiceAccount.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from osp_ops.domain.catalog import default_catalog
from osp_ops.domain.spec import TenantSpec
from osp_ops.engine.api import request
from osp_ops.engine.context import Context, build_context
from osp_ops.engine.runner import run_operation
from osp_ops.platforms.kubernetes import Kube, KubernetesPlatform
from osp_ops.settings import Settings
from osp_ops.store.operations import OperationInfo
from tests.factories import kube_spec
from tests.fixtures.k8s_operator import admin, make_volume
from tests.fixtures.kube import KubeCluster

pytestmark = pytest.mark.k8s

SLUG = "drift"
NS = f"osp-{SLUG}"
NETPOL = f"/apis/networking.k8s.io/v1/namespaces/{NS}/networkpolicies"
BINDING = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{NS}/rolebindings/osp-ops-tenant"
CORE = f"/api/v1/namespaces/{NS}"


@dataclass
class Tenant:
    ctx: Context
    platform: KubernetesPlatform
    spec: TenantSpec

    def run(self, kind: str) -> OperationInfo:
        op, _ = request(self.ctx, kind, self.spec)
        return run_operation(self.ctx, op.id)

    def events(self, op: OperationInfo) -> list[str]:
        return [e["message"] for e in self.ctx.operations.events(op.id)]

    @property
    def client(self) -> Kube:
        return self.platform.kube(self.spec)


@pytest.fixture(scope="module")
def tenant(
    kube: KubeCluster,
    make_settings: Callable[[Path], Settings],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Tenant]:
    """The tenant ``drift``, created once, run as the operator's ServiceAccount."""
    settings = make_settings(tmp_path_factory.mktemp("drift"))
    platform = KubernetesPlatform(
        settings=settings, catalog=default_catalog(), poll_interval=0.2, rollout_timeout=180
    )
    ctx = build_context(settings, actor="test", platform_factory=lambda spec: platform)
    make_volume(kube, SLUG)
    t = Tenant(ctx, platform, kube_spec(SLUG))
    op = t.run("create")
    assert op.status == "succeeded", op.error
    try:
        yield t
    finally:
        platform.close()


def merge_patch(kube: KubeCluster, path: str, body: Any) -> Any:
    """A hand edit as ``kubectl edit`` makes it (an update by another field manager)."""
    return admin(kube).request(
        "PATCH",
        path,
        body=body,
        query=[("fieldManager", "kubectl-edit")],
        content_type="application/merge-patch+json",
    )


def hand_edits(kube: KubeCluster) -> None:
    """Open, relabel and loosen the tenant's security-relevant objects by hand."""
    merge_patch(kube, f"{NETPOL}/decidim-default-deny", {"spec": {"egress": [{}]}})
    merge_patch(
        kube,
        f"{NETPOL}/decidim-allow-app-egress",
        {"spec": {"egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}]}},
    )
    merge_patch(
        kube,
        f"/api/v1/namespaces/{NS}",
        {
            "metadata": {
                "labels": {
                    "pod-security.kubernetes.io/enforce": "privileged",
                    "pod-security.kubernetes.io/warn-version": "v1.25",  # not osp-ops's
                }
            }
        },
    )
    binding = admin(kube).get(BINDING)
    subjects = [
        *binding["subjects"],
        {"kind": "Group", "name": f"system:serviceaccounts:{NS}", "apiGroup": "rbac.authorization.k8s.io"},
    ]  # fmt: skip
    merge_patch(kube, BINDING, {"subjects": subjects})
    merge_patch(kube, f"{CORE}/serviceaccounts/decidim", {"automountServiceAccountToken": True})
    merge_patch(kube, f"{CORE}/resourcequotas/decidim-quota", {"spec": {"hard": {"pods": "1000"}}})
    merge_patch(
        kube,
        f"{CORE}/limitranges/decidim-limits",
        {"spec": {"limits": [{"type": "Container", "default": {"cpu": "64", "memory": "256Gi"}}]}},
    )


EDITED = {
    "NetworkPolicy/decidim-default-deny",
    "NetworkPolicy/decidim-allow-app-egress",
    f"Namespace/{NS}",
    "RoleBinding/osp-ops-tenant",
    "ServiceAccount/decidim",
    "ResourceQuota/decidim-quota",
    "LimitRange/decidim-limits",
}


def assert_restored(kube: KubeCluster) -> None:
    """Every hand edit of ``hand_edits`` is undone on the live objects."""
    root = admin(kube)
    deny = root.get(f"{NETPOL}/decidim-default-deny")
    assert "egress" not in deny["spec"], deny["spec"]
    assert deny["spec"]["policyTypes"] == ["Ingress", "Egress"]
    app = root.get(f"{NETPOL}/decidim-allow-app-egress")
    peers = [p for rule in app["spec"]["egress"] for p in rule.get("to", [])]
    assert {"ipBlock": {"cidr": "0.0.0.0/0"}} not in peers, peers
    assert [r["ports"][0]["port"] for r in app["spec"]["egress"]] == [5432, 6379]
    labels = root.get(f"/api/v1/namespaces/{NS}")["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert "pod-security.kubernetes.io/warn-version" not in labels
    subjects = root.get(BINDING)["subjects"]
    assert [(s["kind"], s["name"]) for s in subjects] == [("ServiceAccount", "osp-ops")]
    assert root.get(f"{CORE}/serviceaccounts/decidim")["automountServiceAccountToken"] is False
    assert root.get(f"{CORE}/resourcequotas/decidim-quota")["spec"]["hard"]["pods"] == "10"
    limits = root.get(f"{CORE}/limitranges/decidim-limits")["spec"]["limits"][0]
    assert limits["default"] == {"cpu": "500m", "memory": "512Mi"}
    assert limits["defaultRequest"] == {"cpu": "100m", "memory": "128Mi"}


def changed(op: OperationInfo) -> dict[str, str | None]:
    return {s.name: s.output for s in op.steps if s.name in ("provision", "deploy")}


def test_drift_is_found_without_applying(tenant: Tenant, kube: KubeCluster) -> None:
    assert tenant.platform.drift(spec=tenant.spec) == []
    hand_edits(kube)
    writes = tenant.client.writes
    found = tenant.platform.drift(spec=tenant.spec)
    assert {str(d.key) for d in found} == EDITED, found
    assert tenant.client.writes == writes  # nothing written
    deny = next(d for d in found if d.key.name == "decidim-default-deny")
    assert deny.fields == ("spec.egress",)
    ns = next(d for d in found if d.key.kind == "Namespace")
    assert ns.fields == (
        "metadata.labels.pod-security.kubernetes.io/enforce",
        "metadata.labels.pod-security.kubernetes.io/warn-version",
    )
    quota = next(d for d in found if d.key.kind == "ResourceQuota")
    assert quota.fields == ("spec.hard.pods",)
    assert admin(kube).get(f"{NETPOL}/decidim-default-deny")["spec"]["egress"] == [{}]


def test_apply_restores_each_drifted_object_and_says_so(tenant: Tenant, kube: KubeCluster) -> None:
    if not tenant.platform.drift(spec=tenant.spec):
        hand_edits(kube)
    op = tenant.run("apply")
    assert op.status == "succeeded", op.error
    events = tenant.events(op)
    restored = {e.split(": drift restored")[0] for e in events if ": drift restored" in e}
    assert restored == EDITED, events
    assert changed(op)["provision"] == "changed=2", changed(op)
    assert changed(op)["deploy"] == "changed=5", changed(op)
    assert_restored(kube)
    assert tenant.platform.drift(spec=tenant.spec) == []

    # The next apply finds everything in place: nothing written, nothing restored.
    writes = tenant.client.writes
    op = tenant.run("apply")
    assert op.status == "succeeded", op.error
    assert tenant.client.writes == writes, tenant.client.requests
    assert not [e for e in tenant.events(op) if "drift" in e]
    assert changed(op) == {"provision": "changed=0", "deploy": "changed=0"}


def test_a_network_policy_added_by_hand_is_reported_and_left(
    tenant: Tenant, kube: KubeCluster
) -> None:
    allow_all = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "allow-all", "namespace": NS},
        "spec": {"podSelector": {}, "egress": [{}], "policyTypes": ["Egress"]},
    }
    admin(kube).apply(allow_all, force=True)
    try:
        found = tenant.platform.drift(spec=tenant.spec)
        assert [(str(d.key), d.fields) for d in found] == [
            ("NetworkPolicy/allow-all", ("not osp-ops's",))
        ]
        op = tenant.run("apply")
        assert op.status == "succeeded", op.error
        events = tenant.events(op)
        assert any(e.startswith("NetworkPolicy/allow-all: not osp-ops's") for e in events), events
        assert changed(op) == {"provision": "changed=0", "deploy": "changed=0"}
        assert admin(kube).get(f"{NETPOL}/allow-all") is not None  # not osp-ops's to delete
    finally:
        admin(kube).request("DELETE", f"{NETPOL}/allow-all")
    assert tenant.platform.drift(spec=tenant.spec) == []


def test_noop_apply_time(tenant: Tenant) -> None:
    """The converged tenant's apply, timed (median of 15; printed, -s shows it)."""
    tenant.run("apply")
    times = []
    before = dict(tenant.client.requests)
    for _ in range(15):
        t0 = time.perf_counter()
        op = tenant.run("apply")
        times.append(time.perf_counter() - t0)
        assert op.status == "succeeded", op.error
    per_apply = {k: (n - before.get(k, 0)) / 15 for k, n in tenant.client.requests.items()}
    assert tenant.client.writes == sum(n for k, n in before.items() if k in ("PATCH", "POST"))
    runs = " ".join(f"{t:.2f}" for t in times)
    print(
        f"\nno-op tenant apply: median {statistics.median(times):.3f}s (runs: {runs}); "
        f"requests per apply: {per_apply}"
    )
