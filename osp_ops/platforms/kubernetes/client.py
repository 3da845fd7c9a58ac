"""The Kubernetes API client: the only module that imports the ``kubernetes`` package.

Checked by import-linter. Everything else in the platform talks to ``Kube``, a thin JSON
client over one ``ApiClient``; API errors become ``ApiError`` (a ``PlatformError``) or
``TemporaryError`` (connection errors, 429 and 5xx), with the library error as cause.
"""

from __future__ import annotations

import json
import os
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kubernetes import config as kube_config
from kubernetes.client import ApiClient, Configuration
from kubernetes.config.config_exception import ConfigException

from osp_ops.domain.errors import ConfigError, PlatformError, TemporaryError
from osp_ops.settings import Settings

FIELD_MANAGER = "osp-ops"
PARTIAL_METADATA = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
WRITE_VERBS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


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

    def close(self) -> None:
        """Close the underlying ``ApiClient`` (its connection pool)."""
        self.api.close()  # type: ignore[no-untyped-call]

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


def new_api_client(settings: Settings, context: str | None) -> ApiClient:
    """An API client from the kubeconfig (its ``context``), else the in-cluster config."""
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
