"""Pure helpers of the Kubernetes platform: parse, order, hash, diff and prune manifests.

No I/O here: ``platforms/kubernetes/`` feeds in what ``helm template`` printed and
what the API server listed, and applies the plans computed here.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from osp_ops.domain.errors import PlatformError

HASH_ANNOTATION = "osp-ops.io/applied-hash"
TASK_LABEL = "osp-ops.io/task"

# Kinds osp-ops applies (and therefore lists and prunes), in apply order: what others
# refer to comes first (quota and limits before pods, config before workloads), the
# Ingress last. Deletion runs in reverse. Pods, ReplicaSets and EndpointSlices carry the
# tenant label too (copied from templates) but are owned by controllers: never listed.
KIND_ORDER: tuple[tuple[str, str], ...] = (
    ("v1", "Namespace"),
    ("v1", "ResourceQuota"),
    ("v1", "LimitRange"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
    ("v1", "ServiceAccount"),
    ("v1", "Secret"),
    ("v1", "ConfigMap"),
    ("v1", "PersistentVolumeClaim"),
    ("v1", "Service"),
    ("apps/v1", "Deployment"),
    ("batch/v1", "Job"),
    ("policy/v1", "PodDisruptionBudget"),
    ("networking.k8s.io/v1", "Ingress"),
)
_RANK = {kind: i for i, (_, kind) in enumerate(KIND_ORDER)}
NAMESPACED_KINDS = tuple(k for k in KIND_ORDER if k[1] != "Namespace")


@dataclass(frozen=True, order=True)
class Key:
    """Identity of an object inside a tenant: kind and name (the namespace is implied)."""

    kind: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind}/{self.name}"


def key_of(obj: Mapping[str, Any]) -> Key:
    """The object's key."""
    return Key(str(obj["kind"]), str(obj["metadata"]["name"]))


def migration_first(
    objects: Sequence[Mapping[str, Any]], jobs: Sequence[Mapping[str, Any]]
) -> tuple[list[Mapping[str, Any]], list[Mapping[str, Any]]]:
    """Split objects to apply into (first, after the migration ``jobs`` completed).

    The Deployments that run a migration Job's image (the app's web and worker) wait
    for it: pods of a new version never serve against the old schema, and the old ones
    keep serving until it is migrated. Everything else (the Job itself, the bundled
    Redis) goes first. Without a Job, everything goes first.
    """

    def images(obj: Mapping[str, Any]) -> set[str]:
        return {str(c["image"]) for c in obj["spec"]["template"]["spec"]["containers"]}

    if not jobs:
        return list(objects), []
    migration = set().union(*(images(j) for j in jobs))
    waits = [o for o in objects if o["kind"] == "Deployment" and images(o) & migration]
    return [o for o in objects if o not in waits], waits


def parse_manifests(text: str, *, source: str = "helm template") -> list[dict[str, Any]]:
    """The objects of a multi-document YAML stream (empty documents dropped)."""
    try:
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        docs = [d for d in yaml.load_all(text, Loader=loader) if d]
    except yaml.YAMLError as e:
        raise PlatformError(f"{source} printed invalid YAML: {e}") from e
    out: list[dict[str, Any]] = []
    for doc in docs:
        if not isinstance(doc, dict) or "kind" not in doc or "metadata" not in doc:
            raise PlatformError(f"{source} printed a document that is not an object: {doc!r}")
        out.append(doc)
    unknown = sorted({o["kind"] for o in out} - set(_RANK))
    if unknown:
        raise PlatformError(
            f"{source} rendered kinds osp-ops does not manage: {', '.join(unknown)} "
            "(add them to KIND_ORDER and to the operator's ClusterRole)"
        )
    return out


def order(objects: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Objects in apply order (kind rank, then name)."""
    return sorted(
        (dict(o) for o in objects), key=lambda o: (_RANK[o["kind"]], o["metadata"]["name"])
    )


def canonical_hash(obj: Mapping[str, Any]) -> str:
    """Digest of an object as osp-ops would apply it (its own hash annotation left out)."""
    clean = json.loads(json.dumps(obj, sort_keys=True, default=str))
    annotations = clean.get("metadata", {}).get("annotations") or {}
    annotations.pop(HASH_ANNOTATION, None)
    data = json.dumps(clean, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(data.encode()).hexdigest()[:32]


def finalize(
    obj: Mapping[str, Any], *, namespace: str | None, labels: Mapping[str, str]
) -> dict[str, Any]:
    """The object to apply: namespace set, tenant labels added, hash annotation stamped."""
    out = json.loads(json.dumps(obj))
    meta = out.setdefault("metadata", {})
    if namespace is not None and out["kind"] != "Namespace":
        meta["namespace"] = namespace
    meta["labels"] = {**(meta.get("labels") or {}), **labels}
    meta["annotations"] = {**(meta.get("annotations") or {})}
    meta["annotations"][HASH_ANNOTATION] = canonical_hash(out)
    return dict(out)


def applied_hash(obj: Mapping[str, Any]) -> str | None:
    """The hash annotation of a live object (None when osp-ops never stamped it)."""
    meta = obj.get("metadata") or {}
    value = (meta.get("annotations") or {}).get(HASH_ANNOTATION)
    return str(value) if value is not None else None


def namespace_object(name: str, labels: Mapping[str, str]) -> dict[str, Any]:
    """A tenant namespace enforcing, auditing and warning at Pod Security ``restricted``."""
    pss = {
        f"pod-security.kubernetes.io/{mode}": "restricted" for mode in ("enforce", "audit", "warn")
    }
    pss.update({f"pod-security.kubernetes.io/{m}-version": "latest" for m in ("enforce",)})
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {**labels, **pss}},
    }


# The operator's rights in a tenant namespace: this ClusterRole (deploy/rbac/operator.yaml)
# bound there, never cluster-wide, to the operator's ServiceAccount.
OPERATOR_TENANT_ROLE = "osp-ops-tenant"
OPERATOR_SERVICE_ACCOUNT = ("osp-ops-system", "osp-ops")


def operator_role_binding(labels: Mapping[str, str]) -> dict[str, Any]:
    """The RoleBinding giving the operator's ServiceAccount its rights in a namespace."""
    namespace, name = OPERATOR_SERVICE_ACCOUNT
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": OPERATOR_TENANT_ROLE, "labels": dict(labels)},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": OPERATOR_TENANT_ROLE,
        },
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
    }


def secret_object(name: str, data: Mapping[str, str], labels: Mapping[str, str]) -> dict[str, Any]:
    """An Opaque Secret (values base64-encoded in ``data``, never ``stringData``)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": name, "labels": dict(labels)},
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in sorted(data.items())},
    }


def secret_digest(data: Mapping[str, str]) -> str:
    """A digest of a Secret's content for pod annotations (rotation restarts pods).

    Salted with the key names; the values are random passwords, so the digest tells
    nothing about them.
    """
    h = hashlib.sha256(b"osp-ops-secret-digest\0")
    for k in sorted(data):
        h.update(k.encode() + b"\0" + data[k].encode() + b"\0")
    return h.hexdigest()[:16]


@dataclass
class Plan:
    """What an apply will do: objects to write, objects already right, objects to prune."""

    apply: list[dict[str, Any]] = field(default_factory=list)
    unchanged: list[Key] = field(default_factory=list)
    prune: list[Key] = field(default_factory=list)

    @property
    def writes(self) -> int:
        """Objects written or deleted by the plan."""
        return len(self.apply) + len(self.prune)


def plan_apply(desired: Sequence[Mapping[str, Any]], live: Mapping[Key, Mapping[str, Any]]) -> Plan:
    """Compare desired objects (finalized) with the live ones listed by tenant label.

    An object is written when it is missing or its hash annotation differs; a live object
    carrying the tenant label that is no longer desired is pruned, except task Jobs
    (``osp-ops.io/task``), which run_task owns.
    """
    plan = Plan()
    wanted = set()
    for obj in order(desired):
        key = key_of(obj)
        wanted.add(key)
        current = live.get(key)
        if current is not None and applied_hash(current) == applied_hash(obj):
            plan.unchanged.append(key)
        else:
            plan.apply.append(obj)
    for key, current_obj in live.items():
        if key in wanted or key.kind == "Namespace":
            continue
        labels = (current_obj.get("metadata") or {}).get("labels") or {}
        if TASK_LABEL in labels:
            continue
        plan.prune.append(key)
    plan.prune.sort(key=lambda k: (-_RANK.get(k.kind, 0), k.name))
    return plan


def to_yaml(objects: Iterable[Mapping[str, Any]]) -> str:
    """A multi-document YAML stream of objects, in apply order."""
    return "".join(
        "---\n" + yaml.safe_dump(o, sort_keys=False, default_flow_style=False)
        for o in order(objects)
    )
