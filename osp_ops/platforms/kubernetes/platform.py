"""``KubernetesPlatform``: the Platform protocol on a Kubernetes cluster.

The package docstring (``platforms/kubernetes/__init__.py``) tells how a tenant is
converged; rendering is ``render.py``, writing and waiting ``apply.py``, readiness
``wait.py``, the API client ``client.py``.
"""

from __future__ import annotations

import base64
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from osp_ops.domain.catalog import Catalog
from osp_ops.domain.errors import ConfigError, PlatformError, TemporaryError
from osp_ops.domain.names import db_name_for, ownership_mark
from osp_ops.domain.spec import TenantSpec
from osp_ops.platforms import pgtenant
from osp_ops.platforms.base import Change, Event, Health, Reporter, TaskResult, null_reporter
from osp_ops.platforms.kubernetes import apply
from osp_ops.platforms.kubernetes.buckets import TenantBuckets
from osp_ops.platforms.kubernetes.client import Kube, new_api_client
from osp_ops.platforms.kubernetes.drift import Drift
from osp_ops.platforms.kubernetes.render import REPO_CHARTS, ChartRenderer, Rendered
from osp_ops.platforms.kubernetes.wait import FAILED, deployment_ready, job_state
from osp_ops.render import manifests as mf
from osp_ops.render.helm_values import (
    OWNER_ANNOTATION,
    TENANT_LABEL,
    namespace_for,
    secret_name_for,
    tenant_labels,
)
from osp_ops.settings import Settings


class KubernetesPlatform:
    """Runs tenants in namespaces of a Kubernetes cluster (see the package docstring)."""

    name = "kubernetes"

    def __init__(
        self,
        *,
        settings: Settings,
        catalog: Catalog,
        values_overlay: Mapping[str, Any] | None = None,
        charts_dir: Path | None = None,
        rollout_timeout: float = 600.0,
        poll_interval: float = 0.5,
        wait: bool = True,
    ) -> None:
        self.settings = settings
        self.catalog = catalog
        self.charts_dir = charts_dir or Path(os.environ.get("OSP_OPS_CHARTS_DIR") or REPO_CHARTS)
        self.rollout_timeout = rollout_timeout
        self.poll_interval = poll_interval
        self.wait = wait
        self.renderer = ChartRenderer(
            settings=settings,
            catalog=catalog,
            charts_dir=self.charts_dir,
            values_overlay=values_overlay,
        )
        self.buckets = TenantBuckets(settings)
        self._clients: dict[str | None, Kube] = {}
        self._dbs: pgtenant.TenantDatabases | None = None
        self._lock = threading.Lock()

    # -- plumbing ------------------------------------------------------------

    @property
    def poll(self) -> apply.Poll:
        """The rollout timeout and poll interval of this platform's waits."""
        return apply.Poll(self.rollout_timeout, self.poll_interval)

    def kube(self, spec: TenantSpec | None = None) -> Kube:
        """The client of the spec's kubeconfig context (one per context, reused)."""
        context = None
        if spec is not None and spec.platform.kind == "kubernetes":
            context = spec.platform.context
        context = context or self.settings.kube_context
        with self._lock:
            if context not in self._clients:
                self._clients[context] = Kube(new_api_client(self.settings, context))
            return self._clients[context]

    def close(self) -> None:
        """Close the API clients."""
        for client in self._clients.values():
            client.close()
        self._clients.clear()
        if self._dbs is not None:
            self._dbs.close()
            self._dbs = None

    def _databases(self) -> pgtenant.TenantDatabases:
        with self._lock:
            if self._dbs is None:
                dsn = self._admin_dsn()
                state = pgtenant.state_database(self.settings.state_url, dsn)
                self._dbs = pgtenant.TenantDatabases(dsn, state=state)
            return self._dbs

    def _admin_dsn(self) -> str:
        dsn = self.settings.platform_db_admin_dsn
        if dsn is None:
            raise ConfigError(
                "platform_db_admin_dsn is not set: Kubernetes tenants need a shared "
                "PostgreSQL server (OSP_OPS_PLATFORM_DB_ADMIN_DSN)"
            )
        return dsn.get_secret_value()

    def secret_data(self, spec: TenantSpec, secrets: Mapping[str, str]) -> dict[str, str]:
        """The Secret's content: DATABASE_URL, SECRET_KEY_BASE, ADMIN_PASSWORD (+ S3 keys)."""
        missing = [k for k in ("db_password", "secret_key", "admin_password") if k not in secrets]
        if missing:
            raise PlatformError(f"{spec.slug}: secrets missing: {', '.join(missing)}")
        return {
            "DATABASE_URL": pgtenant.tenant_url(
                self._admin_dsn(), spec.slug, secrets["db_password"]
            ),
            "SECRET_KEY_BASE": secrets["secret_key"],
            "ADMIN_PASSWORD": secrets["admin_password"],
            **self._s3_keys(),
        }

    def _s3_keys(self) -> dict[str, str]:
        """The bucket keys of ``app_storage: s3`` (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)."""
        if self.settings.app_storage != "s3":
            return {}
        key, secret = self.settings.app_s3_keys()
        return {"AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret}

    # -- rendering and converging ------------------------------------------

    def desired(
        self,
        spec: TenantSpec,
        *,
        version: str,
        secret_data: Mapping[str, str] | None,
        suspended: bool,
    ) -> Rendered:
        """Every namespaced object of the tenant, finalized (labels, namespace, hash)."""
        return self.renderer.desired(
            spec, version=version, secret_data=secret_data, suspended=suspended
        )

    def manifests(
        self, spec: TenantSpec, *, version: str | None = None, secret_hash: str | None = None
    ) -> list[dict[str, Any]]:
        """GitOps output: the namespace and the chart's objects, no Secret (no values)."""
        return self.renderer.manifests(spec, version=version, secret_hash=secret_hash)

    def converge(
        self,
        spec: TenantSpec,
        *,
        version: str,
        secret_data: Mapping[str, str] | None,
        suspended: bool,
        reporter: Reporter = null_reporter,
        wait: bool | None = None,
    ) -> mf.Plan:
        """Bring the tenant's namespace to the rendered state; the plan it carried out."""
        kube = self.kube(spec)
        rendered = self.desired(spec, version=version, secret_data=secret_data, suspended=suspended)
        if secret_data is None:
            # Keep the live Secret (suspend/resume do not get the secrets).
            rendered.objects = [o for o in rendered.objects if o["kind"] != "Secret"]
        live = apply.list_live(kube, spec, rendered.namespace)
        if secret_data is None:
            live = {k: v for k, v in live.items() if k.kind != "Secret"}
        return apply.apply_plan(
            kube,
            rendered,
            live,
            waiting=wait if wait is not None else self.wait,
            reporter=reporter,
            poll=self.poll,
        )

    # -- the Platform protocol -----------------------------------------------

    def keeps_bucket(self, spec: TenantSpec) -> bool:
        """Whether the tenant's uploads are in a bucket (capability ``BucketStorage``)."""
        return self.buckets.enabled

    def provision(
        self,
        *,
        spec: TenantSpec,
        secrets: Mapping[str, str],
        reporter: Reporter,
        tenant_id: str | None = None,
    ) -> Change:
        """The upload bucket (``app_storage: s3``), namespace, tenant database and role
        (each with the tenant's ownership mark; one without it is refused), the Secret."""
        bucket = self.buckets.ensure(spec, reporter)
        kube = self.kube(spec)
        changed = apply.ensure_namespace(kube, spec, reporter, tenant_id, poll=self.poll)
        namespace = namespace_for(spec.slug)
        data = self.secret_data(spec, secrets)
        labels = tenant_labels(spec)
        secret = mf.finalize(
            mf.secret_object(secret_name_for(spec.app.name), data, labels),
            namespace=namespace,
            labels=labels,
        )
        info = kube.info(secret)
        live = kube.get(info.path(namespace, secret["metadata"]["name"]))
        secret_current = live is not None and mf.applied_hash(live) == mf.applied_hash(secret)
        # The role's password is set before the Secret that carries it: after a crash in
        # between, the Secret still differs and the next run sets it again.
        created = self._databases().ensure(
            spec.slug,
            secrets["db_password"],
            tenant_id=tenant_id,
            set_password=not secret_current,
        )
        if created:
            reporter(
                Event(
                    f"database {db_name_for(spec.slug)} created",
                    host="postgresql",
                    status="changed",
                )
            )
        if not secret_current:
            apply.apply_one(kube, secret, reporter, poll=self.poll)
        return Change(
            changed=bucket + changed + int(created) + int(not secret_current),
            details={
                "bucket": bucket,
                "namespace": changed,
                "database": int(created),
                "secret": int(not secret_current),
            },
        )

    def deploy(
        self, *, spec: TenantSpec, version: str, secrets: Mapping[str, str], reporter: Reporter
    ) -> Change:
        """Apply the chart for ``version`` and wait for the migration and the rollout."""
        self.catalog.app(spec.app.name).version(version)
        plan = self.converge(
            spec,
            version=version,
            secret_data=self.secret_data(spec, secrets),
            suspended=False,
            reporter=reporter,
        )
        return Change(
            changed=plan.writes,
            details={
                "applied": len(plan.apply),
                "pruned": len(plan.prune),
                "unchanged": len(plan.unchanged),
            },
        )

    def drift(self, *, spec: TenantSpec) -> list[Drift]:
        """The tenant's security-relevant objects whose live spec differs from the
        render of the version it runs (``drift.py``); nothing is written. Those objects
        do not depend on maintenance mode or the Secret, so neither is needed."""
        kube = self.kube(spec)
        version = self._live_version(kube, spec)
        rendered = self.desired(spec, version=version, secret_data=None, suspended=False)
        return apply.live_drift(kube, spec, rendered.objects)

    def _live_version(self, kube: Kube, spec: TenantSpec) -> str:
        """The version the web Deployment runs (the spec's when there is none yet)."""
        info = kube.resource("apps/v1", "Deployment")
        dep = kube.get(info.path(namespace_for(spec.slug), f"{spec.app.name}-web"))
        live = self._tag_version(spec, dep) if dep is not None else None
        return live or spec.app.version

    def _live_secret_data(self, kube: Kube, spec: TenantSpec) -> dict[str, str] | None:
        info = kube.resource("v1", "Secret")
        live = kube.get(info.path(namespace_for(spec.slug), secret_name_for(spec.app.name)))
        if live is None:
            return None
        return {k: base64.b64decode(v).decode() for k, v in (live.get("data") or {}).items()}

    def _switch(self, spec: TenantSpec, suspended: bool, reporter: Reporter) -> Change:
        kube = self.kube(spec)
        version = self._live_version(kube, spec)
        secret_data = self._live_secret_data(kube, spec)
        if secret_data is None:
            raise PlatformError(f"{spec.slug} has no Secret: it was never provisioned")
        plan = self.converge(
            spec, version=version, secret_data=secret_data, suspended=suspended, reporter=reporter
        )
        return Change(changed=plan.writes)

    def suspend(self, *, spec: TenantSpec, reporter: Reporter) -> Change:
        """Re-apply with ``maintenance.enabled``: app at zero, maintenance page served."""
        return self._switch(spec, True, reporter)

    def resume(self, *, spec: TenantSpec, reporter: Reporter) -> Change:
        """Re-apply without maintenance mode."""
        return self._switch(spec, False, reporter)

    def run_task(
        self,
        *,
        spec: TenantSpec,
        version: str,
        task: str,
        secrets: Mapping[str, str],
        reporter: Reporter,
        command: Sequence[str] | None = None,
    ) -> TaskResult:
        """``migrate``: the version's migration Job; ``bootstrap-admin`` or a ``command``
        (an upgrade's one-time task, named ``task``): a task Job of the version's image."""
        kube = self.kube(spec)
        ns = namespace_for(spec.slug)
        rendered = self.desired(
            spec, version=version, secret_data=self.secret_data(spec, secrets), suspended=False
        )
        migration = next(o for o in rendered.objects if o["kind"] == "Job")
        if command is not None:
            job = self._task_job(spec, migration, task, command)
        elif task == "migrate":
            job = migration
        elif task == "bootstrap-admin":
            job = self._task_job(spec, migration, task)
        else:
            raise PlatformError(f"unknown task {task!r} (migrate, bootstrap-admin)")
        name = job["metadata"]["name"]
        info = kube.info(job)
        live = kube.get(info.path(ns, name))
        if live is None or mf.applied_hash(live) != mf.applied_hash(job):
            if live is not None:
                apply.delete_and_wait(kube, job, poll=self.poll)
            apply.apply_one(kube, job, reporter, poll=self.poll)
        elif job_state(live) == FAILED:
            reporter(
                Event(f"Job/{name} failed before: running it again", host=ns, status="changed")
            )
            apply.delete_and_wait(kube, job, poll=self.poll)
            apply.apply_one(kube, job, reporter, poll=self.poll)
        try:
            done = apply.wait_job(kube, ns, name, reporter, poll=self.poll)
        except PlatformError as e:
            return TaskResult(ok=False, output=str(e))
        st = done.get("status") or {}
        return TaskResult(
            ok=True,
            output=f"Job {ns}/{name} complete "
            f"(succeeded={st.get('succeeded', 0)}, "
            f"completionTime={st.get('completionTime')})",
        )

    def _task_job(
        self,
        spec: TenantSpec,
        migration: Mapping[str, Any],
        task: str,
        command: Sequence[str] | None = None,
    ) -> dict[str, Any]:
        """A Job like the migration's (``render.ChartRenderer.task_job``)."""
        return self.renderer.task_job(spec, migration, task, command)

    def health(self, *, spec: TenantSpec) -> Health:
        """Deployments Available and the Service's endpoints ready; never raises.

        No HTTP check: reaching the app needs an ingress controller in the cluster,
        which osp-ops does not assume.
        """
        url = f"https://{spec.hosts.primary}/"
        ns = namespace_for(spec.slug)
        checks: dict[str, str] = {}
        version = None
        try:
            kube = self.kube(spec)
            info = kube.resource("apps/v1", "Deployment")
            deps = kube.request(
                "GET", info.path(ns), query=[("labelSelector", f"{TENANT_LABEL}={spec.slug}")]
            )
            ok = bool(deps.get("items"))
            serving = False
            for dep in deps.get("items", []):
                name = dep["metadata"]["name"]
                want = int(dep["spec"].get("replicas", 1))
                ready = deployment_ready(dep)
                avail = (dep.get("status") or {}).get("availableReplicas", 0)
                checks[f"deployment/{name}"] = f"{avail}/{want} available" + (
                    "" if ready else " (not ready)"
                )
                ok = ok and ready
                if name == f"{spec.app.name}-web" and want > 0:
                    version = self._tag_version(spec, dep)
                    serving = True
                if name.endswith("-maintenance") and want > 0:
                    serving = True
            slices = kube.request(
                "GET",
                kube.resource("discovery.k8s.io/v1", "EndpointSlice").path(ns),
                query=[("labelSelector", f"kubernetes.io/service-name={spec.app.name}")],
            )
            endpoints = sum(
                1
                for s in slices.get("items", [])
                for e in s.get("endpoints") or []
                if (e.get("conditions") or {}).get("ready")
            )
            checks["service endpoints"] = f"{endpoints} ready"
            ok = ok and serving and endpoints > 0
            checks["http"] = "not checked (needs an ingress controller)"
        except (PlatformError, TemporaryError, ConfigError) as e:
            checks["kubernetes"] = str(e)
            ok = False
        return Health(ok=ok, url=url, checks=checks, version=version)

    def _tag_version(self, spec: TenantSpec, dep: Mapping[str, Any]) -> str | None:
        tag = dep["spec"]["template"]["spec"]["containers"][0]["image"].rpartition(":")[2]
        for v in self.catalog.app(spec.app.name).versions:
            if v.tag == tag:
                return v.version
        return None

    def destroy(
        self, *, spec: TenantSpec, reporter: Reporter, tenant_id: str | None = None
    ) -> Change:
        """Delete the namespace, wait until it is gone, drop the database and role: only
        what carries the tenant's ownership mark (PlatformError otherwise); then the
        upload bucket with every object in it (``app_storage: s3``)."""
        kube = self.kube(spec)
        ns = namespace_for(spec.slug)
        info = kube.resource("v1", "Namespace")
        live = kube.get(info.path(None, ns))
        changed = 0
        if live is not None:
            meta = live.get("metadata") or {}
            found = (meta.get("annotations") or {}).get(OWNER_ANNOTATION)
            mark = ownership_mark(spec.slug, tenant_id)
            ours = found == mark or (tenant_id is None and _marks(found, spec.slug))
            if (meta.get("labels") or {}).get(TENANT_LABEL) != spec.slug or not ours:
                raise PlatformError(
                    f"namespace {ns} does not carry {TENANT_LABEL}={spec.slug} and "
                    f"{OWNER_ANNOTATION}={mark!r}: not deleting it"
                )
            kube.delete(info, None, ns)
            changed += 1
            reporter(Event(f"deleting namespace {ns}", host=ns, status="changed"))
        self.poll.until(
            lambda: kube.get(info.path(None, ns)) is None, f"namespace {ns} to be deleted"
        )
        if self._databases().drop(spec.slug, tenant_id=tenant_id):
            changed += 1
            reporter(
                Event(
                    f"database {db_name_for(spec.slug)} dropped",
                    host="postgresql",
                    status="changed",
                )
            )
        changed += self.buckets.delete(spec, reporter)
        return Change(changed=changed)


def _marks(found: object, slug: str) -> bool:
    """Whether ``found`` is an ownership mark of ``slug`` (any tenant id)."""
    prefix = ownership_mark(slug, None)
    return isinstance(found, str) and (found == prefix or found.startswith(prefix + " "))
