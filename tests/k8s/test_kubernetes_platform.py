"""The Kubernetes platform against the test control plane (kube-apiserver, controller
manager, scheduler, kwok), running as the operator's RBAC-bound ServiceAccount.

kwok plays the kubelet: pods become Running/Ready and Job pods Succeeded without any
container running, so "healthy" here means Deployments Available and Service endpoints
ready; an HTTP check through an Ingress would need an ingress controller and a real
Decidim, neither of which exist here.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from osp_ops.domain.catalog import default_catalog
from osp_ops.domain.errors import CatalogError, PlatformError, SpecError
from osp_ops.domain.names import db_name_for
from osp_ops.engine.context import build_context
from osp_ops.platforms.base import null_reporter
from osp_ops.platforms.kubernetes import ApiError, Kube, KubernetesPlatform
from osp_ops.render.manifests import HASH_ANNOTATION, NAMESPACED_KINDS
from osp_ops.settings import Settings
from tests.factories import kube_spec
from tests.fixtures.k8s_operator import OVERLAY, admin, make_volume
from tests.fixtures.kube import KubeCluster
from tests.fixtures.postgres import PostgresServer

pytestmark = pytest.mark.k8s

SECRETS = {"db_password": "pw-one", "secret_key": "sk-" + "x" * 60, "admin_password": "adm"}


def live_objects(kube: KubeCluster, slug: str) -> dict[tuple[str, str], dict[str, Any]]:
    """Every object osp-ops manages in the tenant's namespace, as admin sees it."""
    k = admin(kube)
    out = {}
    for api_version, kind in NAMESPACED_KINDS:
        info = k.resource(api_version, kind)
        doc = k.request(
            "GET", info.path(f"osp-{slug}"), query=[("labelSelector", f"osp-ops.io/tenant={slug}")]
        )
        for item in doc["items"]:
            out[(kind, item["metadata"]["name"])] = item
    return out


def fingerprint(kube: KubeCluster, slug: str) -> dict[tuple[str, str], str]:
    return {
        key: obj["metadata"].get("annotations", {}).get(HASH_ANNOTATION, "")
        for key, obj in live_objects(kube, slug).items()
    }


def get(kube: KubeCluster, path: str) -> Any:
    return admin(kube).get(path)


def test_create_lyon_then_noop_apply(
    kube: KubeCluster, run: Callable[..., Any], platform: KubernetesPlatform, ctx: Any
) -> None:
    spec = kube_spec("lyon")
    make_volume(kube, "lyon")
    op = run("create", spec)
    assert op.status == "succeeded", op.error

    ns = get(kube, "/api/v1/namespaces/osp-lyon")
    labels = ns["metadata"]["labels"]
    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"
    assert labels["osp-ops.io/tenant"] == "lyon"
    assert labels["app.kubernetes.io/managed-by"] == "osp-ops"

    secret = get(kube, "/api/v1/namespaces/osp-lyon/secrets/decidim-secrets")
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert set(data) == {"DATABASE_URL", "SECRET_KEY_BASE", "ADMIN_PASSWORD"}
    stored = ctx.secrets.all_for("lyon")
    assert data["SECRET_KEY_BASE"] == stored["secret_key"]
    assert data["DATABASE_URL"].startswith("postgresql://osp_lyon:")
    with psycopg.connect(data["DATABASE_URL"]) as conn:  # the URL really logs in
        assert conn.execute("SELECT current_database()").fetchone() == ("osp_lyon",)

    objs = live_objects(kube, "lyon")
    for name in ("decidim-web", "decidim-worker", "decidim-redis"):
        dep = objs[("Deployment", name)]
        conds = {c["type"]: c["status"] for c in dep["status"]["conditions"]}
        assert conds["Available"] == "True", name
    job = objs[("Job", "decidim-migrate-0-28-4")]
    assert any(
        c["type"] == "Complete" and c["status"] == "True" for c in job["status"]["conditions"]
    )
    assert ("Job", "decidim-bootstrap-admin") in objs
    pods = admin(kube).request("GET", "/api/v1/namespaces/osp-lyon/pods")["items"]
    running = [p for p in pods if p["status"]["phase"] == "Running"]
    assert len(running) == 3, [(p["metadata"]["name"], p["status"]["phase"]) for p in pods]
    for obj in objs.values():
        assert obj["metadata"]["labels"]["osp-ops.io/tenant"] == "lyon"
        assert obj["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "osp-ops"

    health = platform.health(spec=spec)
    assert health.ok, health.checks
    assert health.version == "0.28.4"
    assert ctx.tenants.get("lyon").observed_version == "0.28.4"

    # A second apply of the unchanged tenant: zero writes, counted at the client...
    kube_client = platform.kube(spec)
    before = kube_client.writes
    server_before = apiserver_writes(kube)
    op = run("apply", spec)
    assert op.status == "succeeded", op.error
    assert kube_client.writes - before == 0, kube_client.requests
    # ... and at the API server: no write to any kind osp-ops manages.
    assert apiserver_writes(kube) == server_before


def apiserver_writes(kube: KubeCluster) -> dict[str, float]:
    """apiserver_request_total of writes (non-dry-run) to the kinds osp-ops applies."""
    resources = {
        "namespaces",
        "resourcequotas",
        "limitranges",
        "networkpolicies",
        "serviceaccounts",
        "secrets",
        "configmaps",
        "persistentvolumeclaims",
        "services",
        "deployments",
        "jobs",
        "poddisruptionbudgets",
        "ingresses",
    }
    text = kube._get("/metrics")[1].decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line.startswith("apiserver_request_total{"):
            continue
        labels = dict(
            part.split("=", 1) for part in line[line.index("{") + 1 : line.index("}")].split(",")
        )
        labels = {k: v.strip('"') for k, v in labels.items()}
        if (
            labels.get("resource") in resources
            and labels.get("subresource", "") == ""
            and labels.get("verb")
            in ("POST", "PUT", "PATCH", "APPLY", "DELETE", "CREATE", "UPDATE")
            and labels.get("dry_run", "") == ""
        ):
            key = f"{labels['verb']} {labels['resource']}"
            out[key] = out.get(key, 0.0) + float(line.rsplit(" ", 1)[1])
    return out


def test_plan_change_feature_removal_and_immutable_fields(
    kube: KubeCluster, platform: KubernetesPlatform, settings: Settings
) -> None:
    spec = kube_spec("grenoble")
    make_volume(kube, "grenoble")
    platform.provision(spec=spec, secrets=SECRETS, reporter=null_reporter)
    platform.deploy(spec=spec, version="0.28.4", secrets=SECRETS, reporter=null_reporter)
    quota = get(kube, "/api/v1/namespaces/osp-grenoble/resourcequotas/decidim-quota")
    assert quota["spec"]["hard"]["requests.cpu"] == "2"

    # Plan small -> medium: quota, replicas and resources follow.
    medium = spec.model_copy(update={"plan": "medium"})
    platform.deploy(spec=medium, version="0.28.4", secrets=SECRETS, reporter=null_reporter)
    quota = get(kube, "/api/v1/namespaces/osp-grenoble/resourcequotas/decidim-quota")
    assert quota["spec"]["hard"]["requests.cpu"] == "4"
    assert quota["spec"]["hard"]["limits.memory"] == "16Gi"
    web = get(kube, "/apis/apps/v1/namespaces/osp-grenoble/deployments/decidim-web")
    assert web["spec"]["replicas"] == 2
    assert (
        web["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"] == "500m"
    )
    assert web["status"].get("availableReplicas") == 2
    assert ("PodDisruptionBudget", "decidim-web") in live_objects(kube, "grenoble") or any(
        k[0] == "PodDisruptionBudget" for k in live_objects(kube, "grenoble")
    )

    # The operator turns NetworkPolicies off: they are pruned; back on: they return.
    no_np = KubernetesPlatform(
        settings=settings,
        catalog=default_catalog(),
        poll_interval=0.2,
        rollout_timeout=120,
        values_overlay={**OVERLAY, "networkPolicy": {"enabled": False}},
    )
    try:
        plan = no_np.converge(
            medium,
            version="0.28.4",
            secret_data=no_np.secret_data(medium, SECRETS),
            suspended=False,
        )
        assert {k.kind for k in plan.prune} == {"NetworkPolicy"}
        assert not [k for k in live_objects(kube, "grenoble") if k[0] == "NetworkPolicy"]
    finally:
        no_np.close()
    plan = platform.converge(
        medium, version="0.28.4", secret_data=platform.secret_data(medium, SECRETS), suspended=False
    )
    assert {o["kind"] for o in plan.apply} == {"NetworkPolicy"}
    assert len([k for k in live_objects(kube, "grenoble") if k[0] == "NetworkPolicy"]) == 5

    # Immutable fields: someone replaced the migration Job with another pod template and
    # the web Deployment with another selector; the next apply recreates both.
    k = admin(kube)
    job_path = "/apis/batch/v1/namespaces/osp-grenoble/jobs/decidim-migrate-0-28-4"
    job = k.get(job_path)
    k.request("DELETE", job_path, query=[("propagationPolicy", "Foreground")])
    wait_gone(k, job_path)
    tampered = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": "decidim-migrate-0-28-4",
            "namespace": "osp-grenoble",
            "labels": job["metadata"]["labels"],
            "annotations": {HASH_ANNOTATION: "stale"},
        },
        "spec": {"template": strip_pod(job["spec"]["template"], command=["true"])},
    }
    k.request("POST", "/apis/batch/v1/namespaces/osp-grenoble/jobs", body=tampered)
    dep_path = "/apis/apps/v1/namespaces/osp-grenoble/deployments/decidim-worker"
    dep = k.get(dep_path)
    k.request("DELETE", dep_path, query=[("propagationPolicy", "Foreground")])
    wait_gone(k, dep_path)
    template = strip_pod(dep["spec"]["template"])
    template["metadata"]["labels"]["extra"] = "selector"
    k.request(
        "POST",
        "/apis/apps/v1/namespaces/osp-grenoble/deployments",
        body={
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": "decidim-worker",
                "namespace": "osp-grenoble",
                "labels": dep["metadata"]["labels"],
                "annotations": {HASH_ANNOTATION: "stale"},
            },
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"extra": "selector"}},
                "template": template,
            },
        },
    )
    events: list[str] = []
    platform.deploy(
        spec=medium, version="0.28.4", secrets=SECRETS, reporter=lambda e: events.append(e.message)
    )
    assert any("Job/decidim-migrate-0-28-4: immutable" in e for e in events), events
    assert any("Deployment/decidim-worker: immutable" in e for e in events), events
    job = k.get(job_path)
    assert job["spec"]["template"]["spec"]["containers"][0]["command"][:2] == ["bundle", "exec"]
    dep = k.get(dep_path)
    assert "extra" not in dep["spec"]["selector"]["matchLabels"]
    # Converged: nothing left to write.
    plan = platform.converge(
        medium, version="0.28.4", secret_data=platform.secret_data(medium, SECRETS), suspended=False
    )
    assert plan.writes == 0


def strip_pod(template: dict[str, Any], command: list[str] | None = None) -> dict[str, Any]:
    t = yaml.safe_load(yaml.safe_dump(template))
    labels = {
        k: v
        for k, v in t["metadata"]["labels"].items()
        if not k.startswith(("batch.kubernetes.io/", "controller-uid", "job-name"))
    }
    t["metadata"]["labels"] = labels
    if command:
        t["spec"]["containers"][0]["command"] = command
    return t


def wait_gone(k: Kube, path: str) -> None:
    import time

    deadline = time.monotonic() + 60
    while k.get(path) is not None:
        assert time.monotonic() < deadline, f"{path} not deleted"
        time.sleep(0.2)


def test_suspend_resume_and_secret_rotation(
    kube: KubeCluster, platform: KubernetesPlatform, postgres: PostgresServer
) -> None:
    spec = kube_spec("nantes")
    make_volume(kube, "nantes")
    platform.provision(spec=spec, secrets=SECRETS, reporter=null_reporter)
    platform.deploy(spec=spec, version="0.28.4", secrets=SECRETS, reporter=null_reporter)

    platform.suspend(spec=spec, reporter=null_reporter)
    web = get(kube, "/apis/apps/v1/namespaces/osp-nantes/deployments/decidim-web")
    assert web["spec"]["replicas"] == 0
    svc = get(kube, "/api/v1/namespaces/osp-nantes/services/decidim")
    assert svc["spec"]["selector"]["app.kubernetes.io/component"] == "maintenance"
    health = platform.health(spec=spec)
    assert health.ok, health.checks  # the maintenance page serves
    assert "deployment/decidim-maintenance" in health.checks

    platform.resume(spec=spec, reporter=null_reporter)
    web = get(kube, "/apis/apps/v1/namespaces/osp-nantes/deployments/decidim-web")
    assert web["spec"]["replicas"] == 1
    assert get(kube, "/apis/apps/v1/namespaces/osp-nantes/deployments/decidim-maintenance") is None
    assert platform.health(spec=spec).ok

    # Rotation: a new db_password reaches the role, the Secret and (restart) the pods.
    old_hash = web["spec"]["template"]["metadata"]["annotations"]["osp-ops.io/secret-hash"]
    rotated = {**SECRETS, "db_password": "pw-two"}
    platform.provision(spec=spec, secrets=rotated, reporter=null_reporter)
    platform.deploy(spec=spec, version="0.28.4", secrets=rotated, reporter=null_reporter)
    web = get(kube, "/apis/apps/v1/namespaces/osp-nantes/deployments/decidim-web")
    assert web["spec"]["template"]["metadata"]["annotations"]["osp-ops.io/secret-hash"] != old_hash
    url = f"postgresql://osp_nantes:pw-two@{postgres.host}:{postgres.port}/osp_nantes"
    with psycopg.connect(url) as conn:
        conn.execute("SELECT 1")
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url.replace("pw-two", "pw-one"))


def test_cross_tenant_isolation(
    kube: KubeCluster, platform: KubernetesPlatform, postgres: PostgresServer
) -> None:
    a, b = kube_spec("isola"), kube_spec("isolb")
    secrets_b = {**SECRETS, "db_password": "pw-b"}
    for spec, secrets in ((a, SECRETS), (b, secrets_b)):
        make_volume(kube, spec.slug)
        platform.provision(spec=spec, secrets=secrets, reporter=null_reporter)
        platform.deploy(spec=spec, version="0.28.4", secrets=secrets, reporter=null_reporter)
    for slug in ("isola", "isolb"):
        deny = get(
            kube,
            f"/apis/networking.k8s.io/v1/namespaces/osp-{slug}/networkpolicies/"
            "decidim-default-deny",
        )
        assert deny["spec"]["podSelector"] == {}
        assert sorted(deny["spec"]["policyTypes"]) == ["Egress", "Ingress"]

    # Tenant A's ServiceAccount reads no Secret: not B's, not even its own.
    sa = Kube(kube.api_client(kube.kubeconfig_for_service_account("osp-isola", "decidim")))
    for ns in ("osp-isolb", "osp-isola"):
        with pytest.raises(ApiError) as err:
            sa.request("GET", f"/api/v1/namespaces/{ns}/secrets/decidim-secrets")
        assert err.value.status == 403
    sa.api.close()

    # Tenant A's role cannot connect to B's database (CONNECT revoked from PUBLIC).
    own = f"postgresql://osp_isola:pw-one@{postgres.host}:{postgres.port}/osp_isola"
    with psycopg.connect(own) as conn:
        conn.execute("SELECT 1")
    with pytest.raises(psycopg.OperationalError, match="permission denied"):
        psycopg.connect(own.rsplit("/", 1)[0] + "/osp_isolb")


def test_bad_input_fails_before_anything_is_applied(
    kube: KubeCluster, platform: KubernetesPlatform, settings: Settings
) -> None:
    with pytest.raises(SpecError, match=r"app\.version"):
        kube_spec("badver", app={"name": "decidim", "version": "9.9.9"})
    with pytest.raises(SpecError, match="host name"):
        kube_spec("badhost", hosts={"primary": "not a host"})
    spec = kube_spec("tight")
    with pytest.raises(CatalogError):
        platform.deploy(spec=spec, version="9.9.9", secrets=SECRETS, reporter=null_reporter)

    tight = KubernetesPlatform(
        settings=settings,
        catalog=default_catalog(),
        values_overlay={**OVERLAY, "quota": {"requests": {"cpu": "300m"}}},
    )
    try:
        tight.provision(spec=spec, secrets=SECRETS, reporter=null_reporter)
        with pytest.raises(PlatformError, match="quota too small for the plan"):
            tight.deploy(spec=spec, version="0.28.4", secrets=SECRETS, reporter=null_reporter)
    finally:
        tight.close()
    # Only what provision made is there: the chart applied nothing.
    assert set(live_objects(kube, "tight")) == {("Secret", "decidim-secrets")}

    missing = KubernetesPlatform(
        settings=settings.model_copy(update={"helm_binary": "/nonexistent/helm"}),
        catalog=default_catalog(),
    )
    with pytest.raises(PlatformError, match="helm binary '/nonexistent/helm' not found"):
        missing.deploy(
            spec=kube_spec("nohelm"), version="0.28.4", secrets=SECRETS, reporter=null_reporter
        )


def test_destroy_removes_namespace_and_database(
    kube: KubeCluster, platform: KubernetesPlatform, postgres: PostgresServer
) -> None:
    spec = kube_spec("brest")
    make_volume(kube, "brest")
    platform.provision(spec=spec, secrets=SECRETS, reporter=null_reporter)
    platform.deploy(spec=spec, version="0.28.4", secrets=SECRETS, reporter=null_reporter)
    change = platform.destroy(spec=spec, reporter=null_reporter)
    assert change.changed == 2
    assert get(kube, "/api/v1/namespaces/osp-brest") is None
    with psycopg.connect(postgres.dsn) as conn:
        name = db_name_for("brest")
        assert (
            conn.execute("SELECT 1 FROM pg_database WHERE datname=%s", (name,)).fetchone() is None
        )
        assert conn.execute("SELECT 1 FROM pg_roles WHERE rolname=%s", (name,)).fetchone() is None
    assert platform.destroy(spec=spec, reporter=null_reporter).changed == 0  # idempotent


def cli(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "osp_ops.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_kill_during_apply_then_rerun_converges(
    kube: KubeCluster, settings: Settings, platform: KubernetesPlatform, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "OSP_OPS_DATA_DIR": str(settings.data_dir),
        "OSP_OPS_TENANTS_DIR": str(settings.tenants_dir),
        "OSP_OPS_KUBECONFIG": str(settings.kubeconfig),
        "OSP_OPS_PLATFORM_DB_ADMIN_DSN": settings.platform_db_admin_dsn.get_secret_value(),  # type: ignore[union-attr]
        "OSP_OPS_HELM_BINARY": settings.effective_helm_binary,
        "OSP_OPS_TLS_MODE": "none",
        "OSP_OPS_DEFAULT_PLATFORM": "kubernetes",
        "OSP_OPS_LEASE_TTL_SECONDS": "2",
        "OSP_OPS_CONFIG": str(tmp_path / "none.yaml"),
    }
    (tmp_path / "none.yaml").write_text("{}\n")
    make_volume(kube, "metz")
    args = [
        "tenant",
        "create",
        "metz",
        "--app",
        "decidim",
        "--version",
        "0.28.4",
        "--host",
        "participer.metz.example.org",
        "--platform",
        "kubernetes",
    ]
    killed = cli({**env, "OSP_OPS_FAILPOINT": "kube-apply:6"}, *args)
    assert killed.returncode == -9, killed.stdout + killed.stderr
    partial = fingerprint(kube, "metz")
    assert 0 < len(partial) < 17, partial
    rerun = cli(env, "tenant", "apply", "metz", "--wait", "30")
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr

    # The same objects as a clean run of the same spec would give.
    ctx = build_context(settings)
    tenant = ctx.specs.load("metz")
    desired = platform.desired(
        tenant,
        version="0.28.4",
        secret_data=platform.secret_data(tenant, ctx.secrets.all_for("metz")),
        suspended=False,
    )
    want = {
        (o["kind"], o["metadata"]["name"]): o["metadata"]["annotations"][HASH_ANNOTATION]
        for o in desired.objects
    }
    got = fingerprint(kube, "metz")
    got.pop(("Job", "decidim-bootstrap-admin"))
    assert got == want
    plan = platform.converge(
        tenant,
        version="0.28.4",
        secret_data=platform.secret_data(tenant, ctx.secrets.all_for("metz")),
        suspended=False,
    )
    assert plan.writes == 0
