"""The Kubernetes platform: one namespace per tenant, the app from ``charts/decidim``.

The only module that imports the ``kubernetes`` client (checked by import-linter).

How a tenant is converged (docs/platform-kubernetes.md has the whole story):

1. ``provision``: the namespace ``osp-<slug>`` (tenant labels, Pod Security ``restricted``
   enforced, audited and warned) and the RoleBinding giving the operator its rights in it
   (``osp-ops-tenant``; cluster-wide it manages namespaces only), the tenant's role and database on the shared
   PostgreSQL server (``pgtenant``), then the Secret ``decidim-secrets`` built from the
   engine's secrets (DATABASE_URL, SECRET_KEY_BASE, ADMIN_PASSWORD).
2. ``deploy``: ``helm template`` renders the chart with values from
   ``render.helm_values`` (through a temp file; no secret is ever in them); every object
   gets the tenant labels and an ``osp-ops.io/applied-hash`` annotation. The live objects
   of the namespace carrying the tenant label are listed (one LIST per kind); objects
   whose hash matches are left alone, so a converged tenant costs zero writes. Changed
   objects are first validated by a server-side dry run (all of them, before the first
   real write), then applied with server-side apply (field manager ``osp-ops``), and
   objects no longer rendered are deleted. Then the migration Job and the Deployments
   are waited for, with progress events and a timeout.
3. ``run_task("migrate")`` waits for the version's migration Job (reruns it once when
   it failed); ``run_task("bootstrap-admin")`` runs a task Job.

Conflict policy of server-side apply: osp-ops applies only fields it is the source of
truth for. It first applies without ``force``; a conflict (someone changed one of those
fields by hand, e.g. ``kubectl scale``) is reported as an event naming the other field
manager, and the apply is repeated with ``force=true``: osp-ops takes its fields back.
Fields osp-ops does not set stay with their managers. A change the API server refuses as
immutable (a Deployment selector, a Job's pod template) deletes the object (foreground),
waits until it is gone and creates it again.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from kubernetes import config as kube_config
from kubernetes.client import ApiClient, Configuration
from kubernetes.config.config_exception import ConfigException

from osp_ops.domain.catalog import AppKind, Catalog
from osp_ops.domain.errors import ConfigError, PlatformError, TemporaryError
from osp_ops.domain.names import db_name_for, ownership_mark
from osp_ops.domain.spec import TenantSpec
from osp_ops.platforms import pgtenant
from osp_ops.platforms.base import Change, Event, Health, Reporter, TaskResult, null_reporter
from osp_ops.render import manifests as mf
from osp_ops.render.helm_values import (
    OWNER_ANNOTATION,
    TENANT_LABEL,
    helm_values,
    namespace_for,
    secret_name_for,
    tenant_labels,
)
from osp_ops.settings import Settings

FIELD_MANAGER = "osp-ops"
FAILPOINT_ENV = "OSP_OPS_FAILPOINT"
OVERLAY_FILE = "kubernetes-values.yaml"
REPO_CHARTS = Path(__file__).resolve().parents[2] / "charts"
PARTIAL_METADATA = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
WRITE_VERBS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def failpoint(name: str) -> None:
    """Die here with SIGKILL when ``$OSP_OPS_FAILPOINT`` names ``name`` (crash tests).

    The platform's own copy of the engine's failpoints (platforms cannot import the
    engine): ``kube-apply:N`` fires after the N-th object written by one apply.
    """
    armed = os.environ.get(FAILPOINT_ENV)
    if armed and name in armed.split(","):
        os.kill(os.getpid(), signal.SIGKILL)


class ApiError(PlatformError):
    """The API server answered with an error status."""

    def __init__(self, status: int, method: str, path: str, body: bytes) -> None:
        self.status = status
        self.reason = ""
        message = body.decode(errors="replace")[:500]
        try:
            doc = json.loads(body)
            message = str(doc.get("message") or message)
            self.reason = str(doc.get("reason") or "")
        except (ValueError, AttributeError):
            pass
        self.message = message
        hint = (
            " (check the operator's RBAC and admission policy: deploy/rbac/)"
            if status == 403
            else ""
        )
        super().__init__(f"kubernetes {method} {path}: {status} {message}{hint}")

    @property
    def immutable(self) -> bool:
        """The change touches a field the API server refuses to update."""
        return self.status == 422 and "immutable" in self.message


@dataclass(frozen=True)
class ResourceInfo:
    """Where a kind lives in the API (from discovery)."""

    api_version: str
    kind: str
    plural: str
    namespaced: bool

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        """The REST path of the collection or of one object."""
        base = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        ns = f"/namespaces/{namespace}" if self.namespaced and namespace else ""
        return f"{base}{ns}/{self.plural}" + (f"/{name}" if name else "")


class Kube:
    """A thin JSON client over one reused ``ApiClient``: counted requests, cached discovery."""

    def __init__(self, api: ApiClient, *, timeout: float = 30.0) -> None:
        self.api = api
        self.timeout = timeout
        self.requests: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._discovery: dict[str, dict[str, ResourceInfo]] = {}

    @property
    def writes(self) -> int:
        """Requests that changed something (dry runs excluded)."""
        return sum(n for verb, n in self.requests.items() if verb in WRITE_VERBS)

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, str]] = (),
        body: Any = None,
        content_type: str = "application/json",
        accept: str = "application/json",
    ) -> Any:
        """One API call; the decoded JSON answer. ApiError/TemporaryError on failure."""
        dry = any(k == "dryRun" for k, _ in query)
        with self._lock:
            self.requests[f"{method}{'-dryrun' if dry else ''}"] += 1
        headers = {"Accept": accept, "Content-Type": content_type}
        try:
            m, url, hdrs, payload, _ = self.api.param_serialize(
                method=method,
                resource_path=path,
                query_params=list(query),
                header_params=headers,
                body=body,
                auth_settings=["BearerToken"],
            )
            resp = self.api.call_api(
                m, url, header_params=hdrs, body=payload, _request_timeout=self.timeout
            )
            data: bytes = resp.read()  # type: ignore[no-untyped-call]
        except Exception as e:  # urllib3 connection errors, timeouts
            if isinstance(e, PlatformError):
                raise
            raise TemporaryError(
                f"kubernetes {method} {path}: {type(e).__name__}: {e}", delay=2
            ) from e
        if resp.status >= 400:
            if resp.status in (429, 500, 502, 503, 504):
                raise TemporaryError(
                    f"kubernetes {method} {path}: {resp.status} "
                    f"{data.decode(errors='replace')[:200]}",
                    delay=2,
                )
            raise ApiError(resp.status, method, path, data)
        return json.loads(data) if data else None

    def get(self, path: str, **kw: Any) -> Any:
        """GET, None when the object does not exist."""
        try:
            return self.request("GET", path, **kw)
        except ApiError as e:
            if e.status == 404:
                return None
            raise

    def resource(self, api_version: str, kind: str) -> ResourceInfo:
        """Discovery of ``kind``: one request per group version and process."""
        with self._lock:
            cached = self._discovery.get(api_version)
        if cached is None:
            base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
            doc = self.request("GET", base)
            cached = {
                r["kind"]: ResourceInfo(api_version, r["kind"], r["name"], bool(r["namespaced"]))
                for r in doc.get("resources", [])
                if "/" not in r["name"]
            }
            with self._lock:
                self._discovery[api_version] = cached
        try:
            return cached[kind]
        except KeyError:
            raise PlatformError(f"the cluster does not serve {kind} in {api_version}") from None

    def info(self, obj: Mapping[str, Any]) -> ResourceInfo:
        """Discovery of an object's kind."""
        return self.resource(str(obj["apiVersion"]), str(obj["kind"]))

    def apply(self, obj: Mapping[str, Any], *, dry_run: bool = False, force: bool = False) -> Any:
        """Server-side apply of ``obj`` (field manager osp-ops)."""
        info = self.info(obj)
        meta = obj["metadata"]
        query = [("fieldManager", FIELD_MANAGER), ("fieldValidation", "Strict")]
        if force:
            query.append(("force", "true"))
        if dry_run:
            query.append(("dryRun", "All"))
        return self.request(
            "PATCH",
            info.path(meta.get("namespace"), meta["name"]),
            query=query,
            body=obj,
            content_type="application/apply-patch+yaml",
        )

    def delete(
        self,
        info: ResourceInfo,
        namespace: str | None,
        name: str,
        *,
        propagation: str = "Background",
    ) -> bool:
        """Delete an object; False when it was already gone."""
        try:
            self.request(
                "DELETE",
                info.path(namespace, name),
                body={
                    "kind": "DeleteOptions",
                    "apiVersion": "v1",
                    "propagationPolicy": propagation,
                },
            )
        except ApiError as e:
            if e.status == 404:
                return False
            raise
        return True


def _new_api_client(settings: Settings, context: str | None) -> ApiClient:
    kubeconfig = str(settings.kubeconfig) if settings.kubeconfig else None
    try:
        if (
            kubeconfig is None
            and not os.environ.get("KUBECONFIG")
            and os.environ.get("KUBERNETES_SERVICE_HOST")
        ):
            conf = Configuration()
            kube_config.load_incluster_config(client_configuration=conf)  # type: ignore[no-untyped-call]
            return ApiClient(conf)
        client: ApiClient = kube_config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=kubeconfig, context=context
        )
        return client
    except (ConfigException, OSError) as e:
        raise ConfigError(
            f"cannot load the kubeconfig {kubeconfig or os.environ.get('KUBECONFIG') or '~/.kube/config'}"
            f"{f' (context {context})' if context else ''}: {e}"
        ) from e


def _chart_digest(chart: Path) -> str:
    h = sha256()
    for path in sorted(p for p in chart.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(chart)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


@dataclass
class Rendered:
    """What a tenant should have: finalized objects, in apply order."""

    namespace: str
    objects: list[dict[str, Any]]


class KubernetesPlatform:
    """Runs tenants in namespaces of a Kubernetes cluster (see the module docstring)."""

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
        self._overlay = values_overlay
        self._clients: dict[str | None, Kube] = {}
        self._render_cache: dict[str, list[dict[str, Any]]] = {}
        self._chart_digests: dict[Path, str] = {}
        self._db_cidr: str | None = None
        self._s3_egress: list[dict[str, Any]] | None = None
        self._dbs: pgtenant.TenantDatabases | None = None
        self._lock = threading.Lock()

    # -- plumbing ------------------------------------------------------------

    def kube(self, spec: TenantSpec | None = None) -> Kube:
        """The client of the spec's kubeconfig context (one per context, reused)."""
        context = None
        if spec is not None and spec.platform.kind == "kubernetes":
            context = spec.platform.context
        context = context or self.settings.kube_context
        with self._lock:
            if context not in self._clients:
                self._clients[context] = Kube(_new_api_client(self.settings, context))
            return self._clients[context]

    def close(self) -> None:
        """Close the API clients."""
        for client in self._clients.values():
            client.api.close()  # type: ignore[no-untyped-call]
        self._clients.clear()
        if self._dbs is not None:
            self._dbs.close()
            self._dbs = None

    @property
    def overlay(self) -> Mapping[str, Any]:
        """Operator-wide chart values: the constructor's, else data_dir/kubernetes-values.yaml."""
        if self._overlay is None:
            path = self.settings.data_dir / OVERLAY_FILE
            loaded: Any = {}
            if path.exists():
                try:
                    loaded = yaml.safe_load(path.read_text("utf-8")) or {}
                except yaml.YAMLError as e:
                    raise ConfigError(f"{path} is not valid YAML: {e}") from e
                if not isinstance(loaded, dict):
                    raise ConfigError(f"{path} must be a mapping of chart values")
            self._overlay = loaded
        return self._overlay

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

    def db_cidr(self) -> str | None:
        """The shared PostgreSQL server as a CIDR for the egress NetworkPolicy."""
        if self._db_cidr is None:
            dsn = self.settings.platform_db_admin_dsn
            if dsn is None:
                return None
            host = pgtenant.server_address(dsn.get_secret_value()).host
            self._db_cidr = self._cidr(host)
        return self._db_cidr

    def s3_egress(self) -> list[dict[str, Any]]:
        """The tenants' S3 endpoint as ``{cidr, ports}`` for the egress NetworkPolicy."""
        endpoint = self.settings.app_s3_pod_endpoint_url or self.settings.app_s3_endpoint_url
        if self.settings.app_storage != "s3" or not endpoint:
            return []  # AWS: list its ranges in the overlay (networkPolicy.egress.s3)
        if self._s3_egress is None:
            parts = urlsplit(endpoint)
            port = parts.port or (443 if parts.scheme == "https" else 80)
            self._s3_egress = [{"cidr": self._cidr(parts.hostname or ""), "ports": [port]}]
        return self._s3_egress

    @staticmethod
    def _cidr(host: str) -> str:
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            try:
                ip = ipaddress.ip_address(socket.getaddrinfo(host, None)[0][4][0])
            except OSError as e:
                raise TemporaryError(f"cannot resolve {host}: {e}") from e
        return f"{ip}/{ip.max_prefixlen}"

    def _helm(self) -> str:
        binary = self.settings.effective_helm_binary
        found = shutil.which(binary)
        if found is None:
            raise PlatformError(
                f"helm binary {binary!r} not found: run scripts/install-helm (part of "
                "scripts/install-deps) or set helm_binary (OSP_OPS_HELM_BINARY) to its path"
            )
        return found

    def _chart(self, spec: TenantSpec) -> Path:
        app = self.catalog.app(spec.app.name)
        if app.kind is not AppKind.container:
            raise PlatformError(
                f"{app.display_name} is not a container app: it runs on the hosts platform only"
            )
        chart = self.charts_dir / spec.app.name
        if not (chart / "Chart.yaml").is_file():
            raise PlatformError(f"chart {chart} not found (set OSP_OPS_CHARTS_DIR)")
        return chart

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

    # -- rendering -----------------------------------------------------------

    def render_chart(
        self,
        spec: TenantSpec,
        *,
        version: str,
        secret_hash: str | None,
        suspended: bool,
    ) -> list[dict[str, Any]]:
        """``helm template`` of the tenant's chart (cached by values and chart digest)."""
        chart = self._chart(spec)
        values = helm_values(
            spec,
            version=version,
            catalog=self.catalog,
            settings=self.settings,
            db_cidr=self.db_cidr(),
            secret_hash=secret_hash,
            suspended=suspended,
            overlay=self.overlay,
            s3_egress=self.s3_egress(),
        )
        namespace = namespace_for(spec.slug)
        with self._lock:
            if chart not in self._chart_digests:
                self._chart_digests[chart] = _chart_digest(chart)
            digest = self._chart_digests[chart]
        text_values = yaml.safe_dump(values, sort_keys=True)
        key = sha256(f"{digest}\0{namespace}\0{spec.slug}\0{text_values}".encode()).hexdigest()
        cache_file = self.settings.data_dir / "kubernetes" / "render-cache" / f"{key}.json"
        objects = self._render_cache.get(key)
        if objects is None and cache_file.is_file():
            objects = json.loads(cache_file.read_text("utf-8"))
        if objects is None:
            text = self._helm_template(spec.slug, chart, namespace, text_values)
            objects = mf.parse_manifests(text, source=f"helm template {chart.name} ({spec.slug})")
            # Values hold no secrets; the cache only saves helm's start-up time.
            cache_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            tmp = cache_file.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
            tmp.write_text(json.dumps(objects), "utf-8")
            tmp.replace(cache_file)
        self._render_cache[key] = objects
        copied: list[dict[str, Any]] = json.loads(json.dumps(objects))
        return copied

    def _helm_template(self, release: str, chart: Path, namespace: str, values: str) -> str:
        helm = self._helm()
        with tempfile.TemporaryDirectory(prefix="osp-ops-helm-") as tmp:
            values_file = Path(tmp) / "values.yaml"
            values_file.write_text(values, "utf-8")
            try:
                proc = subprocess.run(
                    [helm, "template", release, str(chart), "--namespace", namespace,
                     "--values", str(values_file)],
                    capture_output=True, text=True, timeout=120, check=False,
                    env={**os.environ, "HELM_CACHE_HOME": str(Path(tmp) / "cache"),
                         "HELM_CONFIG_HOME": str(Path(tmp) / "config"),
                         "HELM_DATA_HOME": str(Path(tmp) / "data")},
                )  # fmt: skip
            except subprocess.TimeoutExpired as e:
                raise TemporaryError(f"helm template {chart.name} timed out") from e
        if proc.returncode != 0:
            err = proc.stderr.strip()
            # The chart gathers its validation messages and fails once: show them plainly.
            err = err.removeprefix("Error: ").replace("execution error at ", "")
            raise PlatformError(f"chart {chart.name} refused the values of {release}: {err}")
        return proc.stdout

    def desired(
        self,
        spec: TenantSpec,
        *,
        version: str,
        secret_data: Mapping[str, str] | None,
        suspended: bool,
    ) -> Rendered:
        """Every namespaced object of the tenant, finalized (labels, namespace, hash)."""
        namespace = namespace_for(spec.slug)
        labels = tenant_labels(spec)
        secret_hash = mf.secret_digest(secret_data) if secret_data is not None else None
        objects = self.render_chart(
            spec, version=version, secret_hash=secret_hash, suspended=suspended
        )
        if secret_data is not None:
            objects.append(mf.secret_object(secret_name_for(spec.app.name), secret_data, labels))
        return Rendered(
            namespace,
            mf.order(mf.finalize(o, namespace=namespace, labels=labels) for o in objects),
        )

    def manifests(
        self, spec: TenantSpec, *, version: str | None = None, secret_hash: str | None = None
    ) -> list[dict[str, Any]]:
        """GitOps output: the namespace and the chart's objects, no Secret (no values)."""
        version = version or spec.app.version
        namespace = namespace_for(spec.slug)
        labels = tenant_labels(spec)
        objects = [mf.namespace_object(namespace, labels)]
        objects += self.render_chart(
            spec, version=version, secret_hash=secret_hash, suspended=False
        )
        return mf.order(mf.finalize(o, namespace=namespace, labels=labels) for o in objects)

    # -- applying ------------------------------------------------------------

    def _ensure_namespace(
        self, kube: Kube, spec: TenantSpec, reporter: Reporter, tenant_id: str | None
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
            if mf.applied_hash(live) == mf.applied_hash(obj):
                return self._ensure_operator_binding(kube, spec, reporter)
        self._apply_one(kube, obj, reporter)
        return 1 + self._ensure_operator_binding(kube, spec, reporter)

    def _ensure_operator_binding(self, kube: Kube, spec: TenantSpec, reporter: Reporter) -> int:
        """The RoleBinding that gives the operator its rights in the tenant's namespace
        (cluster-wide it may only manage namespaces), then wait until the authorizer
        knows it: RBAC reaches the API server's cache a moment after the write."""
        namespace = namespace_for(spec.slug)
        labels = tenant_labels(spec)
        obj = mf.finalize(mf.operator_role_binding(labels), namespace=namespace, labels=labels)
        live = kube.get(kube.info(obj).path(namespace, obj["metadata"]["name"]))
        if live is not None and mf.applied_hash(live) == mf.applied_hash(obj):
            return 0
        self._apply_one(kube, obj, reporter)
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

    def _list_live(self, kube: Kube, spec: TenantSpec, namespace: str) -> dict[mf.Key, Any]:
        live: dict[mf.Key, Any] = {}
        selector = f"{TENANT_LABEL}={spec.slug}"
        for api_version, kind in mf.NAMESPACED_KINDS:
            info = kube.resource(api_version, kind)
            # Hash annotations are in the metadata; only the waits read status.
            full = kind in ("Deployment", "Job")
            doc = kube.request(
                "GET",
                info.path(namespace),
                query=[("labelSelector", selector)],
                accept="application/json" if full else PARTIAL_METADATA,
            )
            for item in doc.get("items") or []:
                live[mf.Key(kind, item["metadata"]["name"])] = item
        return live

    def _apply_one(self, kube: Kube, obj: Mapping[str, Any], reporter: Reporter) -> Any:
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
                    self._delete_and_wait(kube, obj)
                    recreated = True
                else:
                    raise
        reporter(Event(f"applied {key}", host=where, status="changed"))
        return result

    def _delete_and_wait(self, kube: Kube, obj: Mapping[str, Any]) -> None:
        info = kube.info(obj)
        meta = obj["metadata"]
        kube.delete(info, meta.get("namespace"), meta["name"], propagation="Foreground")
        self._until(
            lambda: kube.get(info.path(meta.get("namespace"), meta["name"])) is None,
            f"{mf.key_of(obj)} to be deleted",
        )

    def _until(
        self, predicate: Callable[[], object], what: str, timeout: float | None = None
    ) -> Any:
        deadline = time.monotonic() + (timeout if timeout is not None else self.rollout_timeout)
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise PlatformError(f"timed out waiting for {what}")
            time.sleep(self.poll_interval)

    def _validate(self, kube: Kube, objects: Sequence[Mapping[str, Any]]) -> None:
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
                "the cluster refused the rendered objects (nothing was applied): "
                + "; ".join(problems)
            )

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
        live = self._list_live(kube, spec, rendered.namespace)
        if secret_data is None:
            live = {k: v for k, v in live.items() if k.kind != "Secret"}
        plan = mf.plan_apply(rendered.objects, live)
        if plan.apply:
            self._validate(kube, plan.apply)
        waiting = wait if wait is not None else self.wait
        # The migration Job runs to completion before the app's Deployments change.
        jobs = [o for o in rendered.objects if o["kind"] == "Job"] if waiting else []
        first, after = mf.migration_first(plan.apply, jobs)
        for n, obj in enumerate([*first, *after], start=1):
            if after and obj is after[0]:
                for job in jobs:
                    self._wait_job(kube, rendered.namespace, job["metadata"]["name"], reporter)
            self._apply_one(kube, obj, reporter)
            failpoint(f"kube-apply:{n}")
        for key in plan.prune:
            info = kube.resource(self._api_version(key.kind), key.kind)
            kube.delete(
                info,
                rendered.namespace,
                key.name,
                propagation="Foreground" if key.kind == "Job" else "Background",
            )
            reporter(Event(f"pruned {key}", host=rendered.namespace, status="changed"))
        if plan.writes == 0:
            reporter(Event(f"{len(plan.unchanged)} objects unchanged", host=rendered.namespace))
        if waiting:
            self._wait_rollout(kube, rendered, live if plan.writes == 0 else None, reporter)
        return plan

    @staticmethod
    def _api_version(kind: str) -> str:
        return next(v for v, k in mf.KIND_ORDER if k == kind)

    # -- waiting ---------------------------------------------------------------

    @staticmethod
    def _job_state(job: Mapping[str, Any]) -> str:
        status = job.get("status") or {}
        for cond in status.get("conditions") or []:
            if cond.get("status") == "True" and cond.get("type") in ("Complete", "Failed"):
                return str(cond["type"])
        return "Running"

    @staticmethod
    def _deployment_ready(dep: Mapping[str, Any]) -> bool:
        spec, status = dep.get("spec") or {}, dep.get("status") or {}
        want = int(spec.get("replicas", 1))
        if int(status.get("observedGeneration", 0)) < int(dep["metadata"].get("generation", 0)):
            return False
        if want == 0:
            return int(status.get("replicas", 0)) == 0
        conds = {c["type"]: c["status"] for c in status.get("conditions") or []}
        return (
            conds.get("Available") == "True"
            and int(status.get("updatedReplicas", 0)) == want
            and int(status.get("availableReplicas", 0)) >= want
            and int(status.get("replicas", 0)) == want
        )

    def _wait_rollout(
        self,
        kube: Kube,
        rendered: Rendered,
        live: Mapping[mf.Key, Any] | None,
        reporter: Reporter,
    ) -> None:
        """Migration Jobs complete first, then every Deployment Available."""
        ns = rendered.namespace
        jobs = [o for o in rendered.objects if o["kind"] == "Job"]
        deps = [o for o in rendered.objects if o["kind"] == "Deployment"]
        for job in jobs:
            self._wait_job(
                kube,
                ns,
                job["metadata"]["name"],
                reporter,
                known=live.get(mf.key_of(job)) if live else None,
            )
        for dep in deps:
            name = dep["metadata"]["name"]
            known = live.get(mf.key_of(dep)) if live else None
            if known is not None and self._deployment_ready(known):
                continue
            info = kube.info(dep)
            t0 = time.monotonic()
            last = [""]

            def ready(info: ResourceInfo = info, name: str = name, last: list[str] = last) -> bool:
                cur = kube.get(info.path(ns, name))
                if cur is None:
                    return False
                st = cur.get("status") or {}
                note = (
                    f"{st.get('availableReplicas', 0)}/{cur['spec'].get('replicas', 1)} available"
                )
                if note != last[0]:
                    reporter(Event(f"Deployment/{name}: {note}", host=ns, status="info"))
                    last[0] = note
                return self._deployment_ready(cur)

            self._until(ready, f"Deployment {ns}/{name} to become Available")
            reporter(
                Event(f"Deployment/{name} available after {time.monotonic() - t0:.1f}s", host=ns)
            )

    def _wait_job(
        self,
        kube: Kube,
        ns: str,
        name: str,
        reporter: Reporter,
        known: Mapping[str, Any] | None = None,
    ) -> Mapping[str, Any]:
        if known is not None and self._job_state(known) == "Complete":
            return known
        info = kube.resource("batch/v1", "Job")
        t0 = time.monotonic()

        def done() -> Mapping[str, Any] | None:
            cur = kube.get(info.path(ns, name))
            if cur is None:
                raise PlatformError(f"Job {ns}/{name} disappeared while waited for")
            return cur if self._job_state(cur) != "Running" else None

        job: Mapping[str, Any] = self._until(done, f"Job {ns}/{name} to complete")
        state = self._job_state(job)
        reporter(
            Event(
                f"Job/{name}: {state} after {time.monotonic() - t0:.1f}s",
                host=ns,
                status="ok" if state == "Complete" else "failed",
            )
        )
        if state != "Complete":
            conds = [
                c.get("message", "") for c in (job.get("status") or {}).get("conditions") or []
            ]
            raise PlatformError(f"Job {ns}/{name} failed: {'; '.join(filter(None, conds))}")
        return job

    # -- the Platform protocol -----------------------------------------------

    def provision(
        self,
        *,
        spec: TenantSpec,
        secrets: Mapping[str, str],
        reporter: Reporter,
        tenant_id: str | None = None,
    ) -> Change:
        """Namespace, tenant database and role (each with the tenant's ownership mark;
        one without it is refused), the tenant's Secret."""
        kube = self.kube(spec)
        changed = self._ensure_namespace(kube, spec, reporter, tenant_id)
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
            self._apply_one(kube, secret, reporter)
        return Change(
            changed=changed + int(created) + int(not secret_current),
            details={
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

    def _live_version(self, kube: Kube, spec: TenantSpec) -> str:
        """The version the web Deployment runs (the spec's when there is none yet)."""
        app = self.catalog.app(spec.app.name)
        info = kube.resource("apps/v1", "Deployment")
        dep = kube.get(info.path(namespace_for(spec.slug), f"{spec.app.name}-web"))
        if dep is not None:
            image = dep["spec"]["template"]["spec"]["containers"][0]["image"]
            tag = image.rpartition(":")[2]
            for v in app.versions:
                if v.tag == tag:
                    return v.version
        return spec.app.version

    def _live_secret_data(self, kube: Kube, spec: TenantSpec) -> dict[str, str] | None:
        import base64

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
                self._delete_and_wait(kube, job)
            self._apply_one(kube, job, reporter)
        elif self._job_state(live) == "Failed":
            reporter(
                Event(f"Job/{name} failed before: running it again", host=ns, status="changed")
            )
            self._delete_and_wait(kube, job)
            self._apply_one(kube, job, reporter)
        try:
            done = self._wait_job(kube, ns, name, reporter)
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
        """A Job like the migration's (same security context, env, quota-sized resources)."""
        app = self.catalog.app(spec.app.name)
        job = json.loads(json.dumps(migration))
        job["metadata"]["name"] = f"{spec.app.name}-{task}"
        job["metadata"]["labels"][mf.TASK_LABEL] = task
        job["metadata"]["labels"]["app.kubernetes.io/component"] = task
        job["metadata"]["annotations"].pop(mf.HASH_ANNOTATION, None)
        pod = job["spec"]["template"]
        pod["metadata"]["labels"]["app.kubernetes.io/component"] = task
        container = pod["spec"]["containers"][0]
        container["name"] = task
        if command is not None:  # a one-time task: the migration's env is all it needs
            container["command"] = list(command)
            return mf.finalize(job, namespace=job["metadata"]["namespace"], labels={})
        container["command"] = list(app.admin_bootstrap)
        secret = secret_name_for(spec.app.name)
        container["env"] = [
            *container.get("env", []),
            {"name": "ADMIN_EMAIL", "value": str(spec.admin.email)},
            {"name": "ADMIN_NAME", "value": spec.admin.name},
            {
                "name": "ADMIN_PASSWORD",
                "valueFrom": {"secretKeyRef": {"name": secret, "key": "ADMIN_PASSWORD"}},
            },
        ]
        return mf.finalize(job, namespace=job["metadata"]["namespace"], labels={})

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
                ready = self._deployment_ready(dep)
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
        what carries the tenant's ownership mark (PlatformError otherwise)."""
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
        self._until(lambda: kube.get(info.path(None, ns)) is None, f"namespace {ns} to be deleted")
        if self._databases().drop(spec.slug, tenant_id=tenant_id):
            changed += 1
            reporter(
                Event(
                    f"database {db_name_for(spec.slug)} dropped",
                    host="postgresql",
                    status="changed",
                )
            )
        return Change(changed=changed)


def _marks(found: object, slug: str) -> bool:
    """Whether ``found`` is an ownership mark of ``slug`` (any tenant id)."""
    prefix = ownership_mark(slug, None)
    return isinstance(found, str) and (found == prefix or found.startswith(prefix + " "))


@contextmanager
def platform(settings: Settings, catalog: Catalog, **kw: Any) -> Iterator[KubernetesPlatform]:
    """A platform whose API clients are closed on exit."""
    p = KubernetesPlatform(settings=settings, catalog=catalog, **kw)
    try:
        yield p
    finally:
        p.close()


__all__ = ["ApiError", "Kube", "KubernetesPlatform", "failpoint", "platform"]
