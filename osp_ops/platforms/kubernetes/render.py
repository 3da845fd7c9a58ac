"""What a Kubernetes tenant should have: ``helm template`` of its chart, finalized.

The chart values come from ``render.helm_values`` (through a temp file; no secret is
ever in them), with the operator-wide overlay (``data_dir/kubernetes-values.yaml``) and
the egress CIDRs of the shared PostgreSQL server and the S3 endpoint. Renders are cached
by values and chart digest, in memory and under ``data_dir/kubernetes/render-cache``.
Every object gets the tenant labels, its namespace and an ``osp-ops.io/applied-hash``
annotation (``render.manifests.finalize``).
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from osp_ops.apps.charts import helm_values
from osp_ops.domain.catalog import AppKind, Catalog
from osp_ops.domain.errors import ConfigError, PlatformError, TemporaryError
from osp_ops.domain.spec import TenantSpec
from osp_ops.platforms import pgtenant
from osp_ops.render import manifests as mf
from osp_ops.render.helm_values import namespace_for, secret_name_for, tenant_labels
from osp_ops.settings import Settings

OVERLAY_FILE = "kubernetes-values.yaml"
REPO_CHARTS = Path(__file__).resolve().parents[3] / "charts"


def chart_digest(chart: Path) -> str:
    """SHA-256 over every file of the chart directory (names and bytes)."""
    h = sha256()
    for path in sorted(p for p in chart.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(chart)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def cidr_of(host: str) -> str:
    """``host`` (an address or a name resolved now) as a one-address CIDR."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        try:
            ip = ipaddress.ip_address(socket.getaddrinfo(host, None)[0][4][0])
        except OSError as e:
            raise TemporaryError(f"cannot resolve {host}: {e}") from e
    return f"{ip}/{ip.max_prefixlen}"


@dataclass
class Rendered:
    """What a tenant should have: finalized objects, in apply order."""

    namespace: str
    objects: list[dict[str, Any]]


class ChartRenderer:
    """Renders tenants' charts with the operator's settings, overlay and egress CIDRs."""

    def __init__(
        self,
        *,
        settings: Settings,
        catalog: Catalog,
        charts_dir: Path,
        values_overlay: Mapping[str, Any] | None = None,
    ) -> None:
        self.settings = settings
        self.catalog = catalog
        self.charts_dir = charts_dir
        self._overlay = values_overlay
        self._render_cache: dict[str, list[dict[str, Any]]] = {}
        self._chart_digests: dict[Path, str] = {}
        self._db_cidr: str | None = None
        self._s3_egress: list[dict[str, Any]] | None = None
        self._lock = threading.Lock()

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

    def db_cidr(self) -> str | None:
        """The shared PostgreSQL server as a CIDR for the egress NetworkPolicy."""
        if self._db_cidr is None:
            dsn = self.settings.platform_db_admin_dsn
            if dsn is None:
                return None
            host = pgtenant.server_address(dsn.get_secret_value()).host
            self._db_cidr = cidr_of(host)
        return self._db_cidr

    def s3_egress(self) -> list[dict[str, Any]]:
        """The tenants' S3 endpoint as ``{cidr, ports}`` for the egress NetworkPolicy."""
        endpoint = self.settings.app_s3_pod_endpoint_url or self.settings.app_s3_endpoint_url
        if self.settings.app_storage != "s3" or not endpoint:
            return []  # AWS: list its ranges in the overlay (networkPolicy.egress.s3)
        if self._s3_egress is None:
            parts = urlsplit(endpoint)
            port = parts.port or (443 if parts.scheme == "https" else 80)
            self._s3_egress = [{"cidr": cidr_of(parts.hostname or ""), "ports": [port]}]
        return self._s3_egress

    def _helm(self) -> str:
        binary = self.settings.effective_helm_binary
        found = shutil.which(binary)
        if found is None:
            raise PlatformError(
                f"helm binary {binary!r} not found: run scripts/install-helm (part of "
                "scripts/install-deps) or set helm_binary (OSP_OPS_HELM_BINARY) to its path"
            )
        return found

    def chart(self, spec: TenantSpec) -> Path:
        """The chart directory of the tenant's app (a container app only)."""
        app = self.catalog.app(spec.app.name)
        if app.kind is not AppKind.container:
            raise PlatformError(
                f"{app.display_name} is not a container app: it runs on the hosts platform only"
            )
        chart = self.charts_dir / spec.app.name
        if not (chart / "Chart.yaml").is_file():
            raise PlatformError(f"chart {chart} not found (set OSP_OPS_CHARTS_DIR)")
        return chart

    def render_chart(
        self,
        spec: TenantSpec,
        *,
        version: str,
        secret_hash: str | None,
        suspended: bool,
    ) -> list[dict[str, Any]]:
        """``helm template`` of the tenant's chart (cached by values and chart digest)."""
        chart = self.chart(spec)
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
                self._chart_digests[chart] = chart_digest(chart)
            digest = self._chart_digests[chart]
        text_values = yaml.safe_dump(values, sort_keys=True)
        key = sha256(f"{digest}\0{namespace}\0{spec.slug}\0{text_values}".encode()).hexdigest()
        cache_file = self.settings.data_dir / "kubernetes" / "render-cache" / f"{key}.json"
        objects = self._render_cache.get(key)
        if objects is None and cache_file.is_file():
            objects = json.loads(cache_file.read_text("utf-8"))
        if objects is None:
            text = self.helm_template(spec.slug, chart, namespace, text_values)
            objects = mf.parse_manifests(text, source=f"helm template {chart.name} ({spec.slug})")
            # Values hold no secrets; the cache only saves helm's start-up time.
            cache_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            tmp = cache_file.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
            tmp.write_text(json.dumps(objects), "utf-8")
            tmp.replace(cache_file)
        self._render_cache[key] = objects
        copied: list[dict[str, Any]] = json.loads(json.dumps(objects))
        return copied

    def helm_template(self, release: str, chart: Path, namespace: str, values: str) -> str:
        """``helm template`` of ``chart`` with the ``values`` YAML (an isolated helm home),
        without the chart's ``helm test`` hooks (templates/tests/): osp-ops applies none."""
        helm = self._helm()
        with tempfile.TemporaryDirectory(prefix="osp-ops-helm-") as tmp:
            values_file = Path(tmp) / "values.yaml"
            values_file.write_text(values, "utf-8")
            try:
                proc = subprocess.run(
                    [helm, "template", release, str(chart), "--namespace", namespace,
                     "--values", str(values_file), "--skip-tests"],
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

    def task_job(
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
