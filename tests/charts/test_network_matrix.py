"""The NetworkPolicies of charts/decidim, evaluated for every pod osp-ops runs: the
chart's pod templates (Deployments, Jobs) and the task Job the Kubernetes platform
builds from the migration's pod (bootstrap-admin). Each pod's allowed egress and
ingress must be exactly its row of the matrix below, so a new component (or a task
whose pod the policies do not select) fails here, not on a cluster whose CNI enforces
the policies.

Destinations are named from the values: ``postgresql`` (networkPolicy.egress.database),
``s3``, ``smtp``, ``redis`` (the bundled Redis pod or an external one), ``dns`` (the
cluster DNS pods), ``ingress-controller``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from osp_ops.domain.catalog import default_catalog
from osp_ops.platforms.kubernetes import KubernetesPlatform
from osp_ops.render import manifests as mf
from osp_ops.settings import Settings
from tests.charts.test_decidim_chart import CHART, template
from tests.factories import make_spec

pytestmark = pytest.mark.integration

DB, S3, SMTP, REDIS_EXT = "10.10.0.5/32", "10.20.0.0/24", "192.0.2.25/32", "10.30.0.10/32"
VALUES = [
    "-f", str(CHART / "ci" / "values-s3-storage.yaml"),
    "--set", "maintenance.enabled=true",
]  # fmt: skip
EXTERNAL_REDIS = [
    *VALUES,
    "--set", "redis.bundled.enabled=false",
    "--set-json", "networkPolicy.egress.redis=" + json.dumps([{"cidr": REDIS_EXT, "ports": [6379]}]),
]  # fmt: skip
CIDRS = {DB: "postgresql", S3: "s3", SMTP: "smtp", REDIS_EXT: "redis"}

APP_EGRESS = {
    "dns:53/UDP", "dns:53/TCP", "postgresql:5432/TCP", "s3:443/TCP", "s3:9000/TCP",
    "smtp:587/TCP", "redis:6379/TCP",
}  # fmt: skip
DNS_ONLY = {"dns:53/UDP", "dns:53/TCP"}
# component -> (egress, ingress) allowed; every pod osp-ops runs has a row.
MATRIX: dict[str, tuple[set[str], set[str]]] = {
    "web": (APP_EGRESS, {"ingress-controller:http/TCP"}),
    "worker": (APP_EGRESS, set()),
    "migration": (APP_EGRESS, set()),
    "bootstrap-admin": (APP_EGRESS, set()),
    "maintenance": (DNS_ONLY, {"ingress-controller:http/TCP"}),
    "redis": (DNS_ONLY, {f"{c}:6379/TCP" for c in ("web", "worker", "migration", "bootstrap-admin")}),
}  # fmt: skip


def _selects(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    selector = selector or {}
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for e in selector.get("matchExpressions") or []:
        key, op, values = e["key"], e["operator"], e.get("values") or []
        ok = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[op]
        if not ok:
            return False
    return True


def _peers(peer: dict[str, Any], pods: dict[str, dict[str, str]]) -> set[str]:
    """Names of what one peer of a rule designates."""
    if "ipBlock" in peer:
        return {CIDRS.get(peer["ipBlock"]["cidr"], peer["ipBlock"]["cidr"])}
    if "namespaceSelector" in peer:
        ns = peer["namespaceSelector"].get("matchLabels", {})
        pod = (peer.get("podSelector") or {}).get("matchLabels", {})
        if ns == {"kubernetes.io/metadata.name": "kube-system"} and pod == {"k8s-app": "kube-dns"}:
            return {"dns"}
        if ns == {"kubernetes.io/metadata.name": "ingress-nginx"}:
            return {"ingress-controller"}
        return {f"namespaces {ns} pods {pod}"}
    # A podSelector alone: pods of the tenant's namespace.
    return {c for c, labels in pods.items() if _selects(peer.get("podSelector"), labels)}


def _allowed(
    direction: str, labels: dict[str, str], policies: list[dict[str, Any]],
    pods: dict[str, dict[str, str]],
) -> set[str]:  # fmt: skip
    """What the policies selecting a pod allow it, in one direction ('Egress'/'Ingress')."""
    rules_key, peers_key = ("egress", "to") if direction == "Egress" else ("ingress", "from")
    out: set[str] = set()
    for policy in policies:
        spec = policy["spec"]
        if direction not in spec.get("policyTypes", []) or not _selects(
            spec["podSelector"], labels
        ):
            continue
        for rule in spec.get(rules_key) or []:
            names = (
                set().union(*(_peers(p, pods) for p in rule.get(peers_key) or [{}]))
                if rule.get(peers_key)
                else {"anywhere"}
            )
            ports = [
                f"{p['port']}/{p.get('protocol', 'TCP')}" for p in rule.get("ports") or []
            ] or ["any"]
            out |= {f"{n}:{port}" for n in names for port in ports}
    return out  # fmt: skip


def _pods(objects: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """component -> pod labels of every pod osp-ops runs for these objects."""
    pods: dict[str, dict[str, str]] = {}
    for o in objects:
        if o["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            labels = o["spec"]["template"]["metadata"]["labels"]
            pods[labels["app.kubernetes.io/component"]] = labels
    migration = next(o for o in objects if o["kind"] == "Job")
    platform = KubernetesPlatform(
        settings=Settings(data_dir=Path("/nonexistent")), catalog=default_catalog()
    )
    spec = make_spec(
        "springfield",
        version="0.28.4",
        host="participa.springfield.example.org",
        platform="kubernetes",
    )
    job = platform._task_job(
        spec, mf.finalize(migration, namespace="osp-springfield", labels={}), "bootstrap-admin"
    )
    pods["bootstrap-admin"] = job["spec"]["template"]["metadata"]["labels"]
    return pods  # fmt: skip


@pytest.mark.parametrize(
    "values", [VALUES, EXTERNAL_REDIS], ids=["bundled-redis", "external-redis"]
)
def test_every_pod_gets_exactly_the_traffic_of_its_row(values: list[str]) -> None:
    objects = template(*values)
    policies = [o for o in objects if o["kind"] == "NetworkPolicy"]
    pods = _pods(objects)
    expected = dict(MATRIX)
    if values is EXTERNAL_REDIS:
        del expected["redis"]
    assert set(pods) == set(expected), "a pod without a row in MATRIX (or a row without a pod)"
    rows, problems = [], []
    for component, labels in sorted(pods.items()):
        egress, ingress = (_allowed(d, labels, policies, pods) for d in ("Egress", "Ingress"))
        rows.append(
            f"  {component:<16} egress {sorted(egress)}\n  {'':<16} ingress {sorted(ingress)}"
        )
        if (egress, ingress) != expected[component]:
            problems.append(
                f"{component}: egress {sorted(egress)}, ingress {sorted(ingress)}; "
                f"expected {sorted(expected[component][0])}, {sorted(expected[component][1])}"
            )
    print("\nNetworkPolicy matrix:\n" + "\n".join(rows))
    assert not problems, "\n".join(problems)  # fmt: skip
