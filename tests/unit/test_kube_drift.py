"""Drift of security-relevant objects (``platforms/kubernetes/drift.py``), pure: what
counts as drift, what is server defaulting or metadata noise, and the JSON patch that
restores a drifted object."""

from __future__ import annotations

import copy
from fractions import Fraction
from typing import Any

import pytest

from osp_ops.platforms.kubernetes import drift
from osp_ops.render import manifests as mf

pytestmark = pytest.mark.unit

LABELS = {"osp-ops.io/tenant": "lyon", "app.kubernetes.io/managed-by": "osp-ops"}


def netpol(name: str, **spec: Any) -> dict[str, Any]:
    obj = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "labels": dict(LABELS)},
        "spec": {"podSelector": {}, **spec},
    }
    return mf.finalize(obj, namespace="osp-lyon", labels=LABELS)


DENY = netpol("decidim-default-deny", policyTypes=["Ingress", "Egress"])
EGRESS = netpol(
    "decidim-allow-app-egress",
    podSelector={"matchLabels": {"osp-ops.io/network": "app"}},
    policyTypes=["Egress"],
    egress=[{"to": [{"ipBlock": {"cidr": "10.1.2.3/32"}}], "ports": [{"port": 5432}]}],
)
QUOTA = mf.finalize(
    {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "decidim-quota"},
        "spec": {"hard": {"requests.cpu": "2", "requests.memory": "4Gi", "pods": "10"}},
    },
    namespace="osp-lyon",
    labels=LABELS,
)
LIMITS = mf.finalize(
    {
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": {"name": "decidim-limits"},
        "spec": {
            "limits": [
                {
                    "type": "Container",
                    "default": {"cpu": "500m", "memory": "512Mi"},
                    "max": {"cpu": "2"},
                }
            ]
        },
    },
    namespace="osp-lyon",
    labels=LABELS,
)
ACCOUNT = mf.finalize(
    {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": "decidim"},
        "automountServiceAccountToken": False,
    },
    namespace="osp-lyon",
    labels=LABELS,
)
BINDING = mf.finalize(mf.operator_role_binding(LABELS), namespace="osp-lyon", labels=LABELS)
NAMESPACE = mf.finalize(mf.namespace_object("osp-lyon", LABELS), namespace=None, labels=LABELS)
ROLE = {
    "apiVersion": "rbac.authorization.k8s.io/v1",
    "kind": "Role",
    "metadata": {"name": "reader", "namespace": "osp-lyon"},
    "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}],
}


def served(obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` as the API server returns it: metadata noise and server defaults added."""
    out = copy.deepcopy(obj)
    meta = out["metadata"]
    meta.update(
        uid="6d1f", resourceVersion="4711", generation=1, creationTimestamp="2026-12-01T10:00:00Z"
    )
    meta["managedFields"] = [{"manager": "osp-ops", "operation": "Apply"}]
    meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta["name"]
    kind = out["kind"]
    if kind == "NetworkPolicy":
        for rule in out["spec"].get("egress", []):
            for port in rule.get("ports", []):
                port.setdefault("protocol", "TCP")
    elif kind == "ResourceQuota":
        out["status"] = {"hard": out["spec"]["hard"], "used": {"pods": "3"}}
        out["spec"]["hard"]["requests.memory"] = "4096Mi"  # the same quantity
    elif kind == "LimitRange":
        item = out["spec"]["limits"][0]
        item["default"].setdefault("cpu", item["max"]["cpu"])
        item["defaultRequest"] = dict(item["default"])
    elif kind == "ServiceAccount":
        out["secrets"] = [{"name": "decidim-token-x"}]  # the legacy token controller's
    elif kind == "RoleBinding":
        out["subjects"][0]["apiGroup"] = ""
    elif kind == "Namespace":
        out["spec"] = {"finalizers": ["kubernetes"]}
        out["status"] = {"phase": "Active"}
    return out


def apply_patch(obj: dict[str, Any], patch: list[dict[str, Any]]) -> dict[str, Any]:
    """RFC 6902 add, remove and test, enough for ``restore_patch``."""
    out = copy.deepcopy(obj)
    for op in patch:
        *parents, last = [
            p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]
        ]
        target = out
        for p in parents:
            target = target[p]
        if op["op"] == "test":
            assert target[last] == op["value"], op
        elif op["op"] == "add":
            target[last] = copy.deepcopy(op["value"])
        elif op["op"] == "remove":
            del target[last]
        else:
            raise AssertionError(op)
    return out


ALL = [DENY, EGRESS, QUOTA, LIMITS, ACCOUNT, BINDING, NAMESPACE, ROLE]


@pytest.mark.parametrize("obj", ALL, ids=lambda o: o["kind"])
def test_server_defaults_and_metadata_are_no_drift(obj: dict[str, Any]) -> None:
    assert drift.compare(obj, served(obj)) == ()
    listed = served(obj)
    del listed["kind"]  # the items of a LIST carry no kind
    assert drift.compare(obj, listed) == ()


def edited(obj: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """``obj`` as served, with the field at ``path`` ("spec/egress"; a label key is the
    last part, slashes and all) set to ``value``, or removed when it is None."""
    out = served(obj)
    parts = path.split("/", 2) if path.startswith("metadata/labels/") else path.split("/")
    *parents, last = parts
    target = out
    for part in parents:
        target = target.setdefault(part, {})
    if value is None:
        del target[last]
    else:
        target[last] = value
    return out


CASES = [
    (DENY, "spec/egress", [{}], ("spec.egress",)),
    (DENY, "spec/ingress", [{}], ("spec.ingress",)),
    (DENY, "spec/policyTypes", ["Ingress"], ("spec.policyTypes",)),
    (DENY, "spec/podSelector", {"matchLabels": {"app": "none"}}, ("spec.podSelector",)),
    (EGRESS, "spec/egress", [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}], ("spec.egress",)),
    (EGRESS, "spec/egress", [], ("spec.egress",)),
    (QUOTA, "spec/hard/pods", "1000", ("spec.hard.pods",)),
    (QUOTA, "spec/hard/requests.cpu", "2001m", ("spec.hard.requests.cpu",)),
    (QUOTA, "spec/hard/pods", None, ("spec.hard.pods",)),
    (QUOTA, "spec/hard/services", "5", ("spec.hard.services",)),
    (QUOTA, "spec/scopes", ["BestEffort"], ("spec.scopes",)),
    (LIMITS, "spec/limits", [], ("spec.limits",)),
    (ACCOUNT, "automountServiceAccountToken", True, ("automountServiceAccountToken",)),
    (ACCOUNT, "automountServiceAccountToken", None, ("automountServiceAccountToken",)),
    (ACCOUNT, "imagePullSecrets", [{"name": "x"}], ("imagePullSecrets",)),
    (
        BINDING,
        "subjects",
        [*BINDING["subjects"], {"kind": "Group", "name": "system:authenticated"}],
        ("subjects",),
    ),
    (BINDING, "roleRef/name", "admin", ("roleRef",)),
    (ROLE, "rules", [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}], ("rules",)),
    (
        NAMESPACE,
        "metadata/labels/pod-security.kubernetes.io/enforce",
        "privileged",
        ("metadata.labels.pod-security.kubernetes.io/enforce",),
    ),
    (
        NAMESPACE,
        "metadata/labels/pod-security.kubernetes.io/enforce",
        None,
        ("metadata.labels.pod-security.kubernetes.io/enforce",),
    ),
    (
        NAMESPACE,
        "metadata/labels/pod-security.kubernetes.io/warn-version",
        "v1.25",
        ("metadata.labels.pod-security.kubernetes.io/warn-version",),
    ),
]


def _case_id(case: tuple[Any, ...]) -> str:
    return f"{case[0]['metadata']['name']}:{case[1]}={case[2]!r}"


@pytest.mark.parametrize(("obj", "path", "value", "fields"), CASES, ids=map(_case_id, CASES))
def test_a_hand_edit_is_drift_and_the_patch_restores_it(
    obj: dict[str, Any], path: str, value: Any, fields: tuple[str, ...]
) -> None:
    live = edited(obj, path, value)
    assert drift.compare(obj, live) == fields
    patch = drift.restore_patch(obj, live)
    assert patch[0] == {"op": "test", "path": "/metadata/resourceVersion", "value": "4711"}
    restored = apply_patch(live, patch)
    if fields == ("roleRef",):  # immutable: the apply deletes and recreates the binding
        assert drift.compare(obj, restored) == fields
    else:
        assert drift.compare(obj, restored) == ()
    if obj["kind"] == "Namespace":  # other labels are left alone
        assert restored["metadata"]["labels"]["kubernetes.io/metadata.name"] == "osp-lyon"


def test_find_names_the_drifted_objects_present_in_live() -> None:
    live = {mf.key_of(o): served(o) for o in ALL if o is not QUOTA}
    live[mf.key_of(DENY)] = edited(DENY, "spec/egress", [{}])
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {}}
    live[mf.key_of(config)] = {"metadata": {"name": "c"}, "data": {"x": "y"}}
    found = drift.find([*ALL, config], live)
    assert found == [drift.Drift(mf.key_of(DENY), ("spec.egress",))]
    assert str(found[0]) == "NetworkPolicy/decidim-default-deny: spec.egress"


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("500m", Fraction(1, 2)),
        ("0.5", Fraction(1, 2)),
        ("4Gi", Fraction(4 * 1024**3)),
        ("4096Mi", Fraction(4 * 1024**3)),
        ("1k", Fraction(1000)),
        ("1e3", Fraction(1000)),
        (2, Fraction(2)),
        ("1E", Fraction(10**18)),
    ],
)
def test_quantities_compare_by_value(text: object, value: Fraction) -> None:
    assert drift.quantity(text) == value


def test_clean_keeps_an_allow_all_rule() -> None:
    assert drift.clean({"egress": [{}], "ingress": [], "podSelector": {}, "x": None}) == {
        "egress": [{}]
    }
