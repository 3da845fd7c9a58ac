"""Writing a tenant's objects: server-side apply with osp-ops's conflict policy, waits.

Every object is applied with server-side apply (field manager ``osp-ops``). osp-ops
applies only fields it is the source of truth for. It first applies without ``force``;
a conflict (someone changed one of those fields by hand, e.g. ``kubectl scale``) is
reported as an event naming the other field manager, and the apply is repeated with
``force=true``: osp-ops takes its fields back. Fields osp-ops does not set stay with
their managers. A change the API server refuses as immutable (a Deployment selector, a
Job's pod template) deletes the object (foreground), waits until it is gone and creates
it again; never a PersistentVolumeClaim, which holds uploads.

Security-relevant objects (``drift.WATCHED_KINDS``: NetworkPolicies, quota and limits,
ServiceAccount, RoleBinding, the namespace's Pod Security labels) are compared by their
live spec too, not only by their hash annotation: a hand edit is restored, reported as
"<Kind>/<name>: drift restored" and counted as a change (``apply_watched``).

``apply_plan`` carries out a plan of ``render.manifests.plan_apply``: a server-side dry
run of every changed object first (all problems at once, nothing written), then the
migration Job to completion before the Deployments that run its image, then the
prunes, then the rollout waits.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from osp_ops import failpoints
from osp_ops.domain.errors import PlatformError, TemporaryError
from osp_ops.domain.names import ownership_mark
from osp_ops.domain.spec import TenantSpec
from osp_ops.platforms.base import Event, Reporter
from osp_ops.platforms.kubernetes import drift
from osp_ops.platforms.kubernetes.client import (
    FIELD_MANAGER,
    PARTIAL_METADATA,
    ApiError,
    Kube,
    ResourceInfo,
)
from osp_ops.platforms.kubernetes.render import Rendered
from osp_ops.platforms.kubernetes.wait import (
    COMPLETE,
    RUNNING,
    deployment_ready,
    job_failure,
    job_state,
    rollout_note,
)
from osp_ops.render import manifests as mf
from osp_ops.render.helm_values import OWNER_ANNOTATION, TENANT_LABEL, namespace_for, tenant_labels


@dataclass(frozen=True)
class Poll:
    """How long to wait for the cluster, and how often to look."""

    timeout: float
    interval: float

    def until(
        self, predicate: Callable[[], object], what: str, timeout: float | None = None
    ) -> Any:
        """The first truthy value of ``predicate``; PlatformError after the timeout."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise PlatformError(f"timed out waiting for {what}")
            time.sleep(self.interval)


def ensure_namespace(
    kube: Kube, spec: TenantSpec, reporter: Reporter, tenant_id: str | None, *, poll: Poll
) -> int:
    """Create the namespace with the tenant's ownership mark; refuse one without it."""
    namespace = namespace_for(spec.slug)
    mark = ownership_mark(spec.slug, tenant_id)
    ns = mf.namespace_object(namespace, tenant_labels(spec))
    ns["metadata"]["annotations"] = {OWNER_ANNOTATION: mark}
    obj = mf.finalize(ns, namespace=None, labels=tenant_labels(spec))
    live = kube.get(kube.info(obj).path(None, namespace))
    if live is not None:
        if (live.get("status") or {}).get("phase") == "Terminating":
            raise TemporaryError(f"namespace {namespace} is still being deleted", delay=5)
        found = ((live.get("metadata") or {}).get("annotations") or {}).get(OWNER_ANNOTATION)
        if found != mark:
            raise PlatformError(
                f"namespace {namespace} exists but is not this tenant's ({OWNER_ANNOTATION} "
                f"is {found!r}, osp-ops writes {mark!r}): refusing to adopt it; delete it "
                "or use another slug"
            )
        if mf.applied_hash(live) == mf.applied_hash(obj) and not drift.compare(obj, live):
            return ensure_operator_binding(kube, spec, reporter, poll=poll)
    apply_watched(kube, obj, live, reporter, poll=poll)
    return 1 + ensure_operator_binding(kube, spec, reporter, poll=poll)


def ensure_operator_binding(kube: Kube, spec: TenantSpec, reporter: Reporter, *, poll: Poll) -> int:
    """The RoleBinding that gives the operator its rights in the tenant's namespace
    (cluster-wide it may only manage namespaces), then wait until the authorizer
    knows it: RBAC reaches the API server's cache a moment after the write."""
    namespace = namespace_for(spec.slug)
    labels = tenant_labels(spec)
    obj = mf.finalize(mf.operator_role_binding(labels), namespace=namespace, labels=labels)
    live = kube.get(kube.info(obj).path(namespace, obj["metadata"]["name"]))
    if (
        live is not None
        and mf.applied_hash(live) == mf.applied_hash(obj)
        and not drift.compare(obj, live)
    ):
        return 0
    apply_watched(kube, obj, live, reporter, poll=poll)
    secrets = kube.resource("v1", "Secret").path(namespace)
    deadline = time.monotonic() + 30
    while True:
        try:
            kube.request("GET", secrets, query=[("limit", "1")])
            return 1
        except ApiError as e:
            if e.status != 403 or time.monotonic() > deadline:
                raise
        time.sleep(0.2)


def list_live(kube: Kube, spec: TenantSpec, namespace: str) -> dict[mf.Key, Any]:
    """The tenant's objects in ``namespace`` (one LIST per kind; metadata only except
    for Deployments and Jobs, whose status the waits read, and the watched kinds,
    whose spec ``drift`` compares: small objects, the same number of requests)."""
    live: dict[mf.Key, Any] = {}
    selector = f"{TENANT_LABEL}={spec.slug}"
    for api_version, kind in mf.NAMESPACED_KINDS:
        info = kube.resource(api_version, kind)
        full = kind in ("Deployment", "Job") or kind in drift.WATCHED_KINDS
        doc = kube.request(
            "GET",
            info.path(namespace),
            query=[("labelSelector", selector)],
            accept="application/json" if full else PARTIAL_METADATA,
        )
        for item in doc.get("items") or []:
            live[mf.Key(kind, item["metadata"]["name"])] = item
    return live


def apply_one(kube: Kube, obj: Mapping[str, Any], reporter: Reporter, *, poll: Poll) -> Any:
    """Apply one object with the conflict policy of the module docstring."""
    key = mf.key_of(obj)
    where = obj["metadata"].get("namespace")
    force = recreated = False
    while True:
        try:
            result = kube.apply(obj, force=force)
            break
        except ApiError as e:
            if e.status == 409 and not force:
                reporter(
                    Event(
                        f"{key}: field conflict, osp-ops takes its fields back",
                        host=where,
                        status="info",
                        detail=e.message,
                    )
                )
                force = True
            elif e.immutable and key.kind == "PersistentVolumeClaim":
                raise PlatformError(
                    f"{where}/{key}: {e.message}. osp-ops never deletes a claim holding "
                    "uploads: migrate the data by hand (docs/platform-kubernetes.md)"
                ) from e
            elif e.immutable and not recreated:
                reporter(
                    Event(
                        f"{key}: immutable field changed, deleting and recreating",
                        host=where,
                        status="changed",
                        detail=e.message,
                    )
                )
                delete_and_wait(kube, obj, poll=poll)
                recreated = True
            else:
                raise
    reporter(Event(f"applied {key}", host=where, status="changed"))
    return result


def apply_watched(
    kube: Kube,
    obj: Mapping[str, Any],
    live: Mapping[str, Any] | None,
    reporter: Reporter,
    *,
    poll: Poll,
) -> Any:
    """``apply_one``, and for a watched kind put back what server-side apply leaves: a
    field osp-ops never set stays with the field manager that added it (``egress`` on
    the deny-all policy), so what still differs from ``obj`` is replaced by a JSON
    patch. A live object whose hash matched yet differed is reported as drift."""
    if obj["kind"] not in drift.WATCHED_KINDS:
        return apply_one(kube, obj, reporter, poll=poll)
    key = mf.key_of(obj)
    where = obj["metadata"].get("namespace")
    same_render = live is not None and mf.applied_hash(live) == mf.applied_hash(obj)
    found = drift.compare(obj, live) if live is not None and same_render else ()
    result = apply_one(kube, obj, reporter, poll=poll)
    left = drift.compare(obj, result)
    if left:
        info = kube.info(obj)
        result = kube.request(
            "PATCH",
            info.path(where, obj["metadata"]["name"]),
            query=[("fieldManager", FIELD_MANAGER)],
            body=drift.restore_patch(obj, result),
            content_type="application/json-patch+json",
        )
        still = drift.compare(obj, result)
        if still:
            raise PlatformError(f"{key}: could not restore {', '.join(still)}")
    if found or left:
        fields = ", ".join(sorted({*found, *left}))
        reporter(Event(f"{key}: drift restored ({fields})", host=where, status="changed"))
    return result


def foreign_policies(kube: Kube, namespace: str, slug: str) -> list[mf.Key]:
    """NetworkPolicies in the tenant's namespace without its tenant label (one LIST,
    metadata only): osp-ops neither lists nor prunes them, yet policies add up, so one
    added by hand can open what the tenant's own policies close."""
    info = kube.resource("networking.k8s.io/v1", "NetworkPolicy")
    doc = kube.request(
        "GET",
        info.path(namespace),
        query=[("labelSelector", f"{TENANT_LABEL}!={slug}")],  # also: label absent
        accept=PARTIAL_METADATA,
    )
    return sorted(mf.Key("NetworkPolicy", i["metadata"]["name"]) for i in doc.get("items") or [])


def report_foreign(kube: Kube, rendered: Rendered, reporter: Reporter) -> None:
    """An event for each NetworkPolicy of ``foreign_policies`` (left in place)."""
    labels = [(o["metadata"].get("labels") or {}).get(TENANT_LABEL) for o in rendered.objects]
    slug = next((s for s in labels if s), None)
    if slug is None:
        return
    for key in foreign_policies(kube, rendered.namespace, slug):
        reporter(
            Event(
                f"{key}: not osp-ops's (no {TENANT_LABEL}={slug}) and adds to the tenant's "
                "policies: left in place, review or delete it",
                host=rendered.namespace,
                status="info",
            )
        )


def live_drift(
    kube: Kube, spec: TenantSpec, objects: Sequence[Mapping[str, Any]]
) -> list[drift.Drift]:
    """The tenant's watched objects whose live spec differs from ``objects`` (the
    render) or from the namespace and RoleBinding osp-ops writes, then the
    NetworkPolicies that are not osp-ops's (``foreign_policies``); nothing is written."""
    namespace = namespace_for(spec.slug)
    labels = tenant_labels(spec)
    own = [
        mf.finalize(mf.namespace_object(namespace, labels), namespace=None, labels=labels),
        mf.finalize(mf.operator_role_binding(labels), namespace=namespace, labels=labels),
    ]
    live = dict(list_live(kube, spec, namespace))
    for obj in own:
        current = kube.get(kube.info(obj).path(namespace, obj["metadata"]["name"]))
        if current is not None:
            live[mf.key_of(obj)] = current
    found = drift.find([*own, *objects], live)
    foreign = foreign_policies(kube, namespace, spec.slug)
    return found + [drift.Drift(key, (drift.FOREIGN,)) for key in foreign]


def delete_and_wait(kube: Kube, obj: Mapping[str, Any], *, poll: Poll) -> None:
    """Delete ``obj`` (foreground) and wait until the API server no longer has it."""
    info = kube.info(obj)
    meta = obj["metadata"]
    kube.delete(info, meta.get("namespace"), meta["name"], propagation="Foreground")
    poll.until(
        lambda: kube.get(info.path(meta.get("namespace"), meta["name"])) is None,
        f"{mf.key_of(obj)} to be deleted",
    )


def validate(kube: Kube, objects: Sequence[Mapping[str, Any]]) -> None:
    """Server-side dry run of every object to write; all problems reported at once."""
    problems = []
    for obj in objects:
        try:
            kube.apply(obj, dry_run=True, force=True)
        except ApiError as e:
            if e.immutable and obj["kind"] != "PersistentVolumeClaim":
                continue  # the apply deletes and recreates it
            problems.append(f"{mf.key_of(obj)}: {e.message}")
    if problems:
        raise PlatformError(
            "the cluster refused the rendered objects (nothing was applied): " + "; ".join(problems)
        )


def api_version_of(kind: str) -> str:
    """The API version osp-ops writes ``kind`` in."""
    return next(v for v, k in mf.KIND_ORDER if k == kind)


def apply_plan(
    kube: Kube,
    rendered: Rendered,
    live: Mapping[mf.Key, Any],
    *,
    waiting: bool,
    reporter: Reporter,
    poll: Poll,
) -> mf.Plan:
    """Bring ``rendered.namespace`` from ``live`` to ``rendered``; the plan carried out."""
    plan = mf.plan_apply(rendered.objects, live)
    # Hash unchanged, live spec changed by hand: written again (apply_watched).
    drifted = {d.key for d in drift.find(rendered.objects, live) if d.key in plan.unchanged}
    if drifted:
        extra = [o for o in rendered.objects if mf.key_of(o) in drifted]
        plan.apply = mf.order([*plan.apply, *extra])
        plan.unchanged = [k for k in plan.unchanged if k not in drifted]
    if plan.apply:
        validate(kube, plan.apply)
    # The migration Job runs to completion before the app's Deployments change.
    jobs = [o for o in rendered.objects if o["kind"] == "Job"] if waiting else []
    first, after = mf.migration_first(plan.apply, jobs)
    for n, obj in enumerate([*first, *after], start=1):
        if after and obj is after[0]:
            for job in jobs:
                wait_job(kube, rendered.namespace, job["metadata"]["name"], reporter, poll=poll)
        apply_watched(kube, obj, live.get(mf.key_of(obj)), reporter, poll=poll)
        failpoints.hit(f"kube-apply:{n}")  # after the n-th object written by one apply
    for key in plan.prune:
        info = kube.resource(api_version_of(key.kind), key.kind)
        kube.delete(
            info,
            rendered.namespace,
            key.name,
            propagation="Foreground" if key.kind == "Job" else "Background",
        )
        reporter(Event(f"pruned {key}", host=rendered.namespace, status="changed"))
    report_foreign(kube, rendered, reporter)
    if plan.writes == 0:
        reporter(Event(f"{len(plan.unchanged)} objects unchanged", host=rendered.namespace))
    if waiting:
        wait_rollout(kube, rendered, live if plan.writes == 0 else None, reporter, poll=poll)
    return plan


def wait_rollout(
    kube: Kube,
    rendered: Rendered,
    live: Mapping[mf.Key, Any] | None,
    reporter: Reporter,
    *,
    poll: Poll,
) -> None:
    """Migration Jobs complete first, then every Deployment Available."""
    ns = rendered.namespace
    jobs = [o for o in rendered.objects if o["kind"] == "Job"]
    deps = [o for o in rendered.objects if o["kind"] == "Deployment"]
    for job in jobs:
        wait_job(
            kube,
            ns,
            job["metadata"]["name"],
            reporter,
            poll=poll,
            known=live.get(mf.key_of(job)) if live else None,
        )
    for dep in deps:
        name = dep["metadata"]["name"]
        known = live.get(mf.key_of(dep)) if live else None
        if known is not None and deployment_ready(known):
            continue
        info = kube.info(dep)
        t0 = time.monotonic()
        last = [""]

        def ready(info: ResourceInfo = info, name: str = name, last: list[str] = last) -> bool:
            cur = kube.get(info.path(ns, name))
            if cur is None:
                return False
            note = rollout_note(cur)
            if note != last[0]:
                reporter(Event(f"Deployment/{name}: {note}", host=ns, status="info"))
                last[0] = note
            return deployment_ready(cur)

        poll.until(ready, f"Deployment {ns}/{name} to become Available")
        reporter(Event(f"Deployment/{name} available after {time.monotonic() - t0:.1f}s", host=ns))


def wait_job(
    kube: Kube,
    ns: str,
    name: str,
    reporter: Reporter,
    *,
    poll: Poll,
    known: Mapping[str, Any] | None = None,
) -> Mapping[str, Any]:
    """Wait until the Job is done; it when Complete, PlatformError with why when Failed."""
    if known is not None and job_state(known) == COMPLETE:
        return known
    info = kube.resource("batch/v1", "Job")
    t0 = time.monotonic()

    def done() -> Mapping[str, Any] | None:
        cur = kube.get(info.path(ns, name))
        if cur is None:
            raise PlatformError(f"Job {ns}/{name} disappeared while waited for")
        return cur if job_state(cur) != RUNNING else None

    job: Mapping[str, Any] = poll.until(done, f"Job {ns}/{name} to complete")
    state = job_state(job)
    reporter(
        Event(
            f"Job/{name}: {state} after {time.monotonic() - t0:.1f}s",
            host=ns,
            status="ok" if state == COMPLETE else "failed",
        )
    )
    if state != COMPLETE:
        raise PlatformError(f"Job {ns}/{name} failed: {job_failure(job)}")
    return job
