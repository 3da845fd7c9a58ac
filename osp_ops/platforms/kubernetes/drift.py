"""Drift of a tenant's security-relevant objects: rendered against live (pure, no I/O).

The apply skips an object whose ``osp-ops.io/applied-hash`` annotation matches the
render, which says only that nobody changed the *render*: a hand edit of the live
object (``kubectl edit``) leaves the annotation as it was. For the objects that
decide what a tenant's pods may reach or do, that is not enough, so their live spec
is compared with the rendered one:

- NetworkPolicy: the whole ``spec``;
- ResourceQuota and LimitRange: the whole ``spec``, quantities compared by value;
- ServiceAccount: ``automountServiceAccountToken`` and ``imagePullSecrets``;
- RoleBinding: ``roleRef`` and ``subjects``; Role: ``rules``;
- Namespace: the Pod Security labels (``pod-security.kubernetes.io/*``).

Server defaults are applied to the render before comparing (a port's ``protocol:
TCP``, a NetworkPolicy's ``policyTypes``, a LimitRange's default limits and
requests, a subject's ``apiGroup``); absent, null and empty values are the same;
metadata other than the Pod Security labels is never compared (the server adds
uids, managed fields, its own labels). ``compare`` gives the paths that differ,
``find`` the drifted objects of a plan, ``restore_patch`` the JSON patch that puts
back what server-side apply cannot (a field osp-ops never set, such as ``egress``
added to the deny-all policy, belongs to the editor's field manager).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from osp_ops.render import manifests as mf

PSS_PREFIX = "pod-security.kubernetes.io/"
# The kinds whose live spec is compared with the render.
WATCHED_KINDS = frozenset(
    {
        "Namespace",
        "NetworkPolicy",
        "ResourceQuota",
        "LimitRange",
        "ServiceAccount",
        "Role",
        "RoleBinding",
    }
)
RBAC_GROUP = "rbac.authorization.k8s.io"
# The field of a Drift for an object in the tenant's namespace that osp-ops did not
# render (a NetworkPolicy without the tenant label): reported, never restored.
FOREIGN = "not osp-ops's"


@dataclass(frozen=True)
class Drift:
    """A live object whose security-relevant fields differ from the render."""

    key: mf.Key
    fields: tuple[str, ...]  # dotted paths, e.g. "spec.egress", "spec.hard.pods"

    def __str__(self) -> str:
        return f"{self.key}: {', '.join(self.fields)}"


# -- normalizing ---------------------------------------------------------------

_SUFFIX = {
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 1000),
    "": Fraction(1),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
    **{s: Fraction(1024**i) for i, s in enumerate(("Ki", "Mi", "Gi", "Ti", "Pi", "Ei"), 1)},
}
_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]?)$")


def quantity(value: object) -> Fraction | str:
    """A Kubernetes quantity ("500m", "0.5", "1Gi", 2) as a number; anything else as is."""
    text = str(value).strip()
    m = _QUANTITY.match(text)
    if m is None:
        return text
    number, suffix = m.groups()
    try:
        return Fraction(number) * _SUFFIX[suffix]
    except ValueError:
        return text


def clean(value: Any) -> Any:
    """``value`` without null, empty-list and empty-map members (list items are kept:
    ``egress: [{}]`` stays a rule that allows everything)."""
    if isinstance(value, Mapping):
        out = {k: clean(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v not in (None, [], {})}
    if isinstance(value, list):
        return [clean(v) for v in value]
    return value


def _quantities(resources: Any) -> dict[str, Fraction | str]:
    return {str(k): quantity(v) for k, v in (resources or {}).items()}


def _netpol(spec: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = clean(spec)
    for direction in ("ingress", "egress"):
        for rule in out.get(direction, []):
            for port in rule.get("ports", []):
                port.setdefault("protocol", "TCP")
    if "policyTypes" not in out:  # the API server's default
        out["policyTypes"] = ["Ingress"] + (["Egress"] if "egress" in out else [])
    out["policyTypes"] = sorted(out["policyTypes"])
    return out


def _limit_item(item: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = dict(clean(item))
    for field in ("default", "defaultRequest", "max", "min", "maxLimitRequestRatio"):
        if field in out:
            out[field] = _quantities(out[field])
    if out.get("type") == "Container":  # SetDefaults_LimitRangeItem
        default = out.setdefault("default", {})
        request = out.setdefault("defaultRequest", {})
        for k, v in out.get("max", {}).items():
            default.setdefault(k, v)
        for k, v in default.items():
            request.setdefault(k, v)
        for k, v in out.get("min", {}).items():
            request.setdefault(k, v)
    return {k: v for k, v in out.items() if v not in ({}, None)}


def _subject(subject: Mapping[str, Any]) -> tuple[str, str, str, str]:
    kind = str(subject.get("kind", ""))
    group = subject.get("apiGroup") or ("" if kind == "ServiceAccount" else RBAC_GROUP)
    return (kind, str(group), str(subject.get("name", "")), str(subject.get("namespace") or ""))


def _rule(rule: Mapping[str, Any]) -> dict[str, list[str]]:
    return {k: sorted(str(x) for x in v) for k, v in clean(rule).items() if isinstance(v, list)}


def fields_of(obj: Mapping[str, Any], kind: str | None = None) -> dict[str, Any]:
    """The security-relevant fields of ``obj`` (of ``kind``, else its own: the items of
    a LIST carry none), normalized, by dotted path; empty for a kind not watched."""
    kind = kind or obj.get("kind")
    spec = obj.get("spec") or {}
    if kind == "NetworkPolicy":
        return {f"spec.{k}": v for k, v in _netpol(spec).items()}
    if kind == "ResourceQuota":
        out = {f"spec.hard.{k}": v for k, v in _quantities(spec.get("hard")).items()}
        rest = clean({k: v for k, v in spec.items() if k != "hard"})
        return out | {f"spec.{k}": v for k, v in rest.items()}
    if kind == "LimitRange":
        return {"spec.limits": [_limit_item(i) for i in spec.get("limits") or []]}
    if kind == "ServiceAccount":
        sa = clean({k: obj.get(k) for k in ("automountServiceAccountToken", "imagePullSecrets")})
        return dict(sa)
    if kind == "RoleBinding":
        return {
            "roleRef": clean(obj.get("roleRef") or {}),
            "subjects": sorted(_subject(s) for s in obj.get("subjects") or []),
        }
    if kind == "Role":
        return {"rules": sorted((_rule(r) for r in obj.get("rules") or []), key=repr)}
    if kind == "Namespace":
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return {
            f"metadata.labels.{k}": str(v) for k, v in labels.items() if k.startswith(PSS_PREFIX)
        }
    return {}


# -- comparing -------------------------------------------------------------------


def compare(desired: Mapping[str, Any], live: Mapping[str, Any]) -> tuple[str, ...]:
    """The dotted paths where ``live`` differs from ``desired`` (sorted; empty: none)."""
    kind = str(desired["kind"])
    want, have = fields_of(desired, kind), fields_of(live, kind)
    return tuple(sorted(k for k in want.keys() | have.keys() if want.get(k) != have.get(k)))


def find(
    desired: Iterable[Mapping[str, Any]], live: Mapping[mf.Key, Mapping[str, Any]]
) -> list[Drift]:
    """The drifted objects among ``desired`` that exist in ``live`` (full objects, not
    metadata only), in the order of ``desired``."""
    out = []
    for obj in desired:
        if obj.get("kind") not in WATCHED_KINDS:
            continue
        key = mf.key_of(obj)
        current = live.get(key)
        if current is None:
            continue
        fields = compare(obj, current)
        if fields:
            out.append(Drift(key, fields))
    return out


# -- restoring -------------------------------------------------------------------


def _pointer(*parts: str) -> str:
    return "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in parts)


def restore_patch(desired: Mapping[str, Any], live: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A JSON patch (RFC 6902) that makes ``live``'s watched fields those of ``desired``;
    it first tests the live ``resourceVersion``, so a concurrent change fails it."""
    ops: list[dict[str, Any]] = []
    version = (live.get("metadata") or {}).get("resourceVersion")
    if version is not None:
        ops.append({"op": "test", "path": "/metadata/resourceVersion", "value": version})
    kind = desired.get("kind")

    def put(path: str, field: str, source: Mapping[str, Any], present: Mapping[str, Any]) -> None:
        if field in source:
            ops.append({"op": "add", "path": path, "value": source[field]})
        elif field in present:
            ops.append({"op": "remove", "path": path})

    if kind in ("NetworkPolicy", "ResourceQuota", "LimitRange"):
        put("/spec", "spec", desired, live)
    elif kind == "ServiceAccount":
        for field in ("automountServiceAccountToken", "imagePullSecrets"):
            put(_pointer(field), field, desired, live)
    elif kind == "RoleBinding":
        put("/subjects", "subjects", desired, live)  # roleRef is immutable: recreated
    elif kind == "Role":
        put("/rules", "rules", desired, live)
    elif kind == "Namespace":
        want = (desired.get("metadata") or {}).get("labels") or {}
        have = (live.get("metadata") or {}).get("labels") or {}
        for label in sorted(k for k in want.keys() | have.keys() if k.startswith(PSS_PREFIX)):
            if want.get(label) != have.get(label):
                put(_pointer("metadata", "labels", label), label, want, have)
    return ops
