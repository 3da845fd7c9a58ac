"""Renders charts/decidim with every ci/values-*.yaml scenario and checks the output.

Needs the helm binary (integration tier). It is found through $OSP_OPS_HELM, then PATH,
then the test binaries of scripts/testbin ($OSP_OPS_TESTBIN or ~/.cache/osp-ops/testbin/bin);
without it these tests fail, they do not skip. tests/charts/test_decidim_chart_k8s.py
installs the chart into the test control plane.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.integration

CHART = Path(__file__).resolve().parents[2] / "charts" / "decidim"
CI_FILES = sorted((CHART / "ci").glob("values-*.yaml"))
RELEASE = "springfield"
FULLNAME = f"{RELEASE}-decidim"

REQUIRED_LABELS = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/component",
    "app.kubernetes.io/managed-by",
)
SECRETISH = re.compile(
    r"PASSW|SECRET|TOKEN|PRIVATE|CREDENTIAL|ACCESS_KEY|API_KEY|DATABASE_URL", re.I
)
# Volume types the restricted Pod Security level allows.
RESTRICTED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
POD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job"}


# --------------------------------------------------------------------------- helpers


@cache
def helm() -> str:
    candidates = [
        os.environ.get("OSP_OPS_HELM"),
        shutil.which("helm"),
        str(Path(os.environ.get("OSP_OPS_TESTBIN", "")) / "helm")
        if os.environ.get("OSP_OPS_TESTBIN")
        else None,
        str(Path.home() / ".cache" / "osp-ops" / "testbin" / "bin" / "helm"),
    ]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail(
        "helm binary not found: set OSP_OPS_HELM, put helm on PATH, or install it at "
        "~/.cache/osp-ops/testbin/bin/helm (the chart tests need it and do not skip)",
        pytrace=False,
    )


def run_helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([helm(), *args], capture_output=True, text=True, timeout=120, check=False)


class UniqueKeyLoader(yaml.SafeLoader):
    """A YAML loader that refuses duplicate mapping keys (e.g. a label given twice)."""


def _construct_mapping(loader: UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,
)


def template(*args: str) -> list[dict[str, Any]]:
    """helm template the chart; the objects it renders (asserting success)."""
    result = run_helm("template", RELEASE, str(CHART), "--namespace", "tenant-springfield", *args)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.load_all(result.stdout, Loader=UniqueKeyLoader) if doc]


def template_error(*args: str) -> str:
    """helm template the chart expecting a failure; its error output."""
    result = run_helm("template", RELEASE, str(CHART), *args)
    assert result.returncode != 0, "helm template should have failed:\n" + result.stdout[:2000]
    return result.stderr


@cache
def rendered(ci_file: str) -> tuple[dict[str, Any], ...]:
    return tuple(template("-f", str(CHART / "ci" / ci_file)))


def by_kind(
    objs: Iterator[dict[str, Any]] | tuple[dict[str, Any], ...], kind: str
) -> list[dict[str, Any]]:
    return [o for o in objs if o["kind"] == kind]


def one(objs: tuple[dict[str, Any], ...], kind: str, name: str) -> dict[str, Any]:
    matches = [o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(matches) == 1, (
        f"expected one {kind}/{name}, got {[o['metadata']['name'] for o in by_kind(objs, kind)]}"
    )
    return matches[0]


def pod_specs(
    objs: tuple[dict[str, Any], ...],
) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(object name, pod template metadata, pod spec) of every workload."""
    for obj in objs:
        if obj["kind"] in POD_KINDS:
            tpl = obj["spec"]["template"]
            yield obj["metadata"]["name"], tpl["metadata"], tpl["spec"]


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


def minimal_set(*extra: str) -> list[str]:
    return ["-f", str(CHART / "ci" / "values-minimal.yaml"), *extra]


ci_ids = [f.name for f in CI_FILES]


# --------------------------------------------------------------------------- lint and render


def test_ci_scenarios_exist() -> None:
    names = {f.name for f in CI_FILES}
    for scenario in (
        "minimal",
        "s3-storage",
        "pvc-storage",
        "external-redis",
        "suspended",
        "no-networkpolicy",
    ):
        assert f"values-{scenario}.yaml" in names


@pytest.mark.parametrize("ci_file", ci_ids)
def test_helm_lint_strict_is_clean(ci_file: str) -> None:
    result = run_helm("lint", "--strict", str(CHART), "-f", str(CHART / "ci" / ci_file))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    # helm lint only logs a template `fail` as INFO: make sure validation passed too.
    assert "VALUES VALIDATION" not in output, output
    assert "[ERROR]" not in output and "[WARNING]" not in output, output


@pytest.mark.parametrize("ci_file", ci_ids)
def test_renders_valid_objects(ci_file: str) -> None:
    objs = rendered(ci_file)
    assert objs
    names = set()
    for obj in objs:
        assert obj.get("apiVersion") and obj.get("kind"), obj
        name = obj["metadata"]["name"]
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", name) and len(name) <= 63, name
        assert (obj["kind"], name) not in names, f"duplicate {obj['kind']}/{name}"
        names.add((obj["kind"], name))
        assert "namespace" not in obj["metadata"], "objects must take the release namespace"
    kinds = {o["kind"] for o in objs}
    assert "Namespace" not in kinds, "osp-ops creates the namespace, the chart must not"
    assert "Secret" not in kinds, "the chart only references Secrets created by osp-ops"
    assert {"Deployment", "Service", "ConfigMap", "ServiceAccount"} <= kinds


@pytest.mark.parametrize("ci_file", ci_ids)
def test_kubernetes_schemas(ci_file: str) -> None:
    kubernetes_validate = pytest.importorskip(
        "kubernetes_validate",
        reason="kubernetes-validate not installed (pip install kubernetes-validate)",
    )
    for obj in rendered(ci_file):
        kubernetes_validate.validate(obj, "1.30.0", strict=True)


# --------------------------------------------------------------------------- labels


@pytest.mark.parametrize("ci_file", ci_ids)
def test_every_object_and_pod_carries_the_labels(ci_file: str) -> None:
    objs = rendered(ci_file)
    for obj in objs:
        labels = obj["metadata"].get("labels", {})
        for key in REQUIRED_LABELS:
            assert labels.get(key), f"{obj['kind']}/{obj['metadata']['name']} lacks label {key}"
        assert labels["app.kubernetes.io/instance"] == RELEASE
    for name, meta, _ in pod_specs(objs):
        for key in REQUIRED_LABELS:
            assert meta["labels"].get(key), f"pods of {name} lack label {key}"


def test_common_labels_win_without_duplicates() -> None:
    # values-s3-storage passes the osp-ops labels; the unique-key loader rejects duplicates.
    objs = rendered("values-s3-storage.yaml")
    for obj in objs:
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/managed-by"] == "osp-ops", obj["metadata"]["name"]
        assert labels["osp-ops.io/tenant"] == "springfield"
        assert labels["app.kubernetes.io/version"] == "0.28.4"
        assert obj["metadata"]["annotations"]["osp-ops.io/operation"] == "42"
    for _, meta, _ in pod_specs(objs):
        assert meta["labels"]["app.kubernetes.io/managed-by"] == "osp-ops"
        # commonAnnotations stay off pod templates: they must not restart pods or
        # change the immutable template of the migration Job.
        assert "osp-ops.io/operation" not in meta.get("annotations", {})
    default = rendered("values-minimal.yaml")
    assert all(o["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm" for o in default)


def test_selectors_do_not_use_common_or_version_labels() -> None:
    for dep in by_kind(rendered("values-s3-storage.yaml"), "Deployment"):
        selector = dep["spec"]["selector"]["matchLabels"]
        assert set(selector) == {
            "app.kubernetes.io/name",
            "app.kubernetes.io/instance",
            "app.kubernetes.io/component",
        }


# --------------------------------------------------------------------------- pod security


@pytest.mark.parametrize("ci_file", ci_ids)
def test_pods_pass_the_restricted_pod_security_level(ci_file: str) -> None:
    specs = list(pod_specs(rendered(ci_file)))
    assert specs
    for name, _, spec in specs:
        where = f"pods of {name}"
        pod_sc = spec.get("securityContext", {})
        assert spec.get("automountServiceAccountToken") is False, where
        for host_field in ("hostNetwork", "hostPID", "hostIPC"):
            assert not spec.get(host_field), f"{where}: {host_field}"
        for volume in spec.get("volumes", []):
            kinds = set(volume) - {"name"}
            assert kinds <= RESTRICTED_VOLUMES, f"{where}: volume {volume}"
        assert pod_sc.get("seccompProfile", {}).get("type") in ("RuntimeDefault", "Localhost"), (
            where
        )
        containers = spec["containers"] + spec.get("initContainers", [])
        for container in containers:
            cwhere = f"{where}, container {container['name']}"
            sc = container.get("securityContext", {})
            assert sc.get("allowPrivilegeEscalation") is False, cwhere
            assert not sc.get("privileged"), cwhere
            assert "ALL" in sc.get("capabilities", {}).get("drop", []), cwhere
            assert set(sc.get("capabilities", {}).get("add", [])) <= {"NET_BIND_SERVICE"}, cwhere
            run_as_non_root = sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot"))
            assert run_as_non_root is True, cwhere
            assert sc.get("runAsUser", pod_sc.get("runAsUser")) != 0, cwhere
            seccomp = sc.get("seccompProfile", pod_sc.get("seccompProfile", {}))
            assert seccomp.get("type") in ("RuntimeDefault", "Localhost"), cwhere
            assert sc.get("readOnlyRootFilesystem") is True, cwhere
            for port in container.get("ports", []):
                assert "hostPort" not in port, cwhere
            # every container states its requests and limits (a ResourceQuota needs them)
            resources = container.get("resources", {})
            for field in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources.get(field, {})), f"{cwhere}: {field}"


def test_service_account_does_not_mount_a_token() -> None:
    sa = one(rendered("values-minimal.yaml"), "ServiceAccount", FULLNAME)
    assert sa["automountServiceAccountToken"] is False


def test_writable_paths_are_empty_dirs() -> None:
    web = one(rendered("values-minimal.yaml"), "Deployment", f"{FULLNAME}-web")
    spec = web["spec"]["template"]["spec"]
    mounts = {m["mountPath"]: m["name"] for m in spec["containers"][0]["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    for path in ("/tmp", "/app/tmp", "/app/log"):
        assert "emptyDir" in volumes[mounts[path]], path
    assert "persistentVolumeClaim" in volumes[mounts["/app/storage"]]


# --------------------------------------------------------------------------- secrets


@pytest.mark.parametrize("ci_file", ci_ids)
def test_no_secret_values_are_rendered(ci_file: str) -> None:
    objs = rendered(ci_file)
    for cm in by_kind(objs, "ConfigMap"):
        for key, value in cm.get("data", {}).items():
            assert not SECRETISH.search(key), f"ConfigMap {cm['metadata']['name']} holds {key}"
            assert not re.search(r"://[^/\s@]*:[^/\s@]*@", value), f"credentials in {key}"
    for name, _, spec in pod_specs(objs):
        for container in spec["containers"]:
            for var in container.get("env", []):
                if SECRETISH.search(var["name"]) or var["name"] == "REDIS_URL":
                    assert "value" not in var, f"{name}: {var['name']} has a literal value"
                    assert "secretKeyRef" in var["valueFrom"], f"{name}: {var['name']}"


def test_secrets_are_referenced_by_key() -> None:
    objs = rendered("values-s3-storage.yaml")
    web = one(objs, "Deployment", f"{FULLNAME}-web")["spec"]["template"]["spec"]["containers"][0]
    env = env_of(web)
    for key in (
        "DATABASE_URL",
        "SECRET_KEY_BASE",
        "SMTP_PASSWORD",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
    ):
        ref = env[key]["valueFrom"]["secretKeyRef"]
        assert ref == {
            "name": "springfield-decidim",
            "key": key,
            **({"optional": True} if key == "SMTP_PASSWORD" else {}),
        }
    assert "REDIS_URL" not in env  # bundled Redis: URL in the ConfigMap
    config = one(objs, "ConfigMap", f"{FULLNAME}-config")["data"]
    assert config["STORAGE_PROVIDER"] == "amazon"
    assert config["AWS_BUCKET"] == "springfield-uploads"
    assert config["DECIDIM_AVAILABLE_LOCALES"] == "es,ca,en"
    assert config["DECIDIM_DEFAULT_LOCALE"] == "es"
    assert config["RAILS_ENV"] == "production"
    assert config["SMTP_USERNAME"] == "participa"


def test_external_redis_url_comes_from_the_secret() -> None:
    objs = rendered("values-external-redis.yaml")
    assert not [
        o for o in objs if o["metadata"]["labels"]["app.kubernetes.io/component"] == "redis"
    ]
    for name, _, spec in pod_specs(objs):
        env = env_of(spec["containers"][0])
        assert env["REDIS_URL"]["valueFrom"]["secretKeyRef"]["key"] == "REDIS_URL", name
    assert "REDIS_URL" not in one(objs, "ConfigMap", f"{FULLNAME}-config")["data"]


@pytest.mark.parametrize(
    "args",
    [
        ["--set", "smtp.password=hunter2"],
        ["--set", "secrets.databaseUrl=postgres://u:p@db/x"],
        ["--set", "extraEnv[0].name=SMTP_PASSWORD", "--set", "extraEnv[0].value=x"],
        ["--set", "extraEnv[0].name=DATABASE_URL", "--set", "extraEnv[0].value=x"],
        [
            "--set",
            "redis.external.url=redis://:hunter2@redis:6379/0",
            "--set",
            "redis.bundled.enabled=false",
        ],
    ],
    ids=[
        "smtp-password",
        "secrets-key",
        "extraenv-password",
        "extraenv-database-url",
        "redis-url-password",
    ],
)
def test_schema_refuses_secret_values(args: list[str]) -> None:
    error = template_error(*minimal_set(*args))
    assert "schema" in error, error


@pytest.mark.parametrize(
    "args",
    [
        ["--set", "web.replcas=2"],
        ["--set", "qouta.pods=3"],
        ["--set", "storage.type=nfs"],
        ["--set", "containerSecurityContext.allowPrivilegeEscalation=true"],
        ["--set", "podSecurityContext.runAsNonRoot=false"],
        ["--set", "web.resources.requests.cpu=lots"],
    ],
    ids=["typo-nested", "typo-top", "enum", "escalation", "root", "quantity"],
)
def test_schema_catches_typos_and_weakening(args: list[str]) -> None:
    error = template_error(*minimal_set(*args))
    assert "schema" in error, error


# --------------------------------------------------------------------------- network policy


@pytest.mark.parametrize("ci_file", [f for f in ci_ids if f != "values-no-networkpolicy.yaml"])
def test_network_policies_deny_by_default(ci_file: str) -> None:
    policies = by_kind(rendered(ci_file), "NetworkPolicy")
    deny = [
        p
        for p in policies
        if p["spec"]["podSelector"] == {}
        and set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"}
        and not p["spec"].get("ingress")
        and not p["spec"].get("egress")
    ]
    assert len(deny) == 1, "one default-deny policy for the whole namespace"
    dns = one(rendered(ci_file), "NetworkPolicy", f"{FULLNAME}-allow-dns")
    ports = {(p["protocol"], p["port"]) for p in dns["spec"]["egress"][0]["ports"]}
    assert ports == {("UDP", 53), ("TCP", 53)}
    ingress = one(rendered(ci_file), "NetworkPolicy", f"{FULLNAME}-allow-ingress-controller")
    source = ingress["spec"]["ingress"][0]["from"][0]
    assert source["namespaceSelector"] == {
        "matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}
    }


def test_network_policy_egress_lists() -> None:
    objs = rendered("values-s3-storage.yaml")
    egress = one(objs, "NetworkPolicy", f"{FULLNAME}-allow-app-egress")["spec"]["egress"]
    blocks = {
        rule["to"][0]["ipBlock"]["cidr"]: sorted(p["port"] for p in rule["ports"])
        for rule in egress
        if "ipBlock" in rule["to"][0]
    }
    assert blocks == {"10.10.0.5/32": [5432], "10.20.0.0/24": [443, 9000], "192.0.2.25/32": [587]}
    assert any("podSelector" in rule["to"][0] for rule in egress), "egress to the bundled Redis"
    redis = one(objs, "NetworkPolicy", f"{FULLNAME}-allow-redis")
    assert redis["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "redis"


def test_no_network_policy_scenario_renders_none() -> None:
    objs = rendered("values-no-networkpolicy.yaml")
    assert not by_kind(objs, "NetworkPolicy")
    assert not by_kind(objs, "ResourceQuota") and not by_kind(objs, "LimitRange")


# --------------------------------------------------------------------------- migration, maintenance, pdb


def test_migration_job_is_named_after_the_target_version() -> None:
    job = one(rendered("values-minimal.yaml"), "Job", f"{FULLNAME}-migrate-0-28-4")
    assert job["metadata"]["annotations"]["osp-ops.io/target-version"] == "0.28.4"
    assert "helm.sh/hook" not in job["metadata"].get("annotations", {})
    spec = job["spec"]
    assert "ttlSecondsAfterFinished" not in spec
    assert spec["backoffLimit"] == 1 and spec["activeDeadlineSeconds"] == 1800
    container = spec["template"]["spec"]["containers"][0]
    assert container["command"] == ["bundle", "exec", "rails", "db:migrate"]
    assert container["image"] == "ghcr.io/decidim/decidim:0.28.4"
    assert spec["template"]["spec"]["restartPolicy"] == "Never"
    # the Job's pod template must not change with the chart version (it is immutable)
    assert "helm.sh/chart" not in spec["template"]["metadata"]["labels"]

    other = template(*minimal_set("--set", "image.tag=0.29.2"))
    assert one(tuple(other), "Job", f"{FULLNAME}-migrate-0-29-2")
    assert not by_kind(rendered("values-suspended.yaml"), "Job")  # migration.enabled=false there


def test_migration_job_name_fits_63_characters() -> None:
    objs = template(
        *minimal_set("--set", "fullnameOverride=" + "a" * 52, "--set", "image.tag=0.28.4-rc1")
    )
    (job,) = by_kind(iter(objs), "Job")
    assert len(job["metadata"]["name"]) <= 63
    assert job["metadata"]["name"].endswith("-migrate-0-28-4-rc1")


def test_maintenance_mode_switches_the_service_and_scales_to_zero() -> None:
    normal = rendered("values-minimal.yaml")
    assert (
        one(normal, "Service", FULLNAME)["spec"]["selector"]["app.kubernetes.io/component"] == "web"
    )
    assert one(normal, "Deployment", f"{FULLNAME}-web")["spec"]["replicas"] == 1

    suspended = rendered("values-suspended.yaml")
    service = one(suspended, "Service", FULLNAME)
    assert service["spec"]["selector"]["app.kubernetes.io/component"] == "maintenance"
    assert one(suspended, "Deployment", f"{FULLNAME}-web")["spec"]["replicas"] == 0
    assert one(suspended, "Deployment", f"{FULLNAME}-worker")["spec"]["replicas"] == 0
    page = one(suspended, "Deployment", f"{FULLNAME}-maintenance")
    assert page["spec"]["replicas"] == 1
    container = page["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "docker.io/nginxinc/nginx-unprivileged:1.27.3-alpine"
    assert container["ports"][0] == {"name": "http", "containerPort": 8080, "protocol": "TCP"}
    html = one(suspended, "ConfigMap", f"{FULLNAME}-maintenance")["data"]["index.html"]
    assert "Capital City &lt;Participa&gt;" in html  # display name, HTML-escaped
    # the Ingress still points at the same Service
    ingress = one(suspended, "Ingress", FULLNAME)
    assert ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] == FULLNAME
    assert not by_kind(suspended, "PodDisruptionBudget")


def test_pdb_only_with_several_web_replicas() -> None:
    assert not by_kind(rendered("values-minimal.yaml"), "PodDisruptionBudget")
    pdb = one(rendered("values-s3-storage.yaml"), "PodDisruptionBudget", f"{FULLNAME}-web")
    assert pdb["apiVersion"] == "policy/v1"
    assert pdb["spec"]["minAvailable"] == 1


def test_ingress_has_tls_and_one_rule_per_host() -> None:
    ingress = one(rendered("values-s3-storage.yaml"), "Ingress", FULLNAME)
    assert (
        ingress["metadata"]["annotations"]["cert-manager.io/cluster-issuer"] == "letsencrypt-prod"
    )
    hosts = ["participa.springfield.example.org", "www.participa.springfield.example.org"]
    assert [r["host"] for r in ingress["spec"]["rules"]] == hosts
    assert ingress["spec"]["tls"] == [{"secretName": f"{FULLNAME}-tls", "hosts": hosts}]
    assert ingress["spec"]["ingressClassName"] == "nginx"


def test_probes_use_the_primary_host() -> None:
    web = one(rendered("values-s3-storage.yaml"), "Deployment", f"{FULLNAME}-web")
    container = web["spec"]["template"]["spec"]["containers"][0]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        get = container[probe]["httpGet"]
        assert get["path"] == "/" and get["port"] == "http"
        assert {"name": "Host", "value": "participa.springfield.example.org"} in get["httpHeaders"]


def test_quota_and_limit_range_follow_the_plan() -> None:
    objs = rendered("values-s3-storage.yaml")
    quota = one(objs, "ResourceQuota", f"{FULLNAME}-quota")["spec"]["hard"]
    assert quota == {
        "requests.cpu": "4",
        "requests.memory": "8Gi",
        "requests.storage": "50Gi",
        "limits.cpu": "12",
        "limits.memory": "16Gi",
        "pods": "20",
        "persistentvolumeclaims": "2",
    }
    limits = one(objs, "LimitRange", f"{FULLNAME}-limits")["spec"]["limits"][0]
    assert limits["type"] == "Container" and limits["default"] and limits["defaultRequest"]


# --------------------------------------------------------------------------- validation


def test_quota_too_small_is_a_clear_error() -> None:
    error = template_error(*minimal_set("--set", "quota.requests.cpu=500m"))
    assert "quota too small for the plan: quota.requests.cpu=500m" in error
    # the message names the values that add up, and the total
    for value in (
        "web.resources.requests.cpu",
        "worker.resources.requests.cpu",
        "redis.bundled.resources.requests.cpu",
        "migration.resources.requests.cpu",
    ):
        assert value in error
    assert "= 1000m" in error


def test_quota_checks_memory_limits_pods_and_storage() -> None:
    error = template_error(
        *minimal_set(
            "--set",
            "quota.limits.memory=2Gi",
            "--set",
            "quota.pods=4",
            "--set",
            "quota.requests.storage=1Gi",
        )
    )
    assert "quota.limits.memory=2Gi" in error
    assert "quota.pods=4 but the release runs 6 pods" in error
    assert "quota.requests.storage=1Gi but storage.pvc.size=5Gi" in error
    assert "(3 problems)" in error


def test_quota_that_fits_exactly_passes() -> None:
    # web (1+1 surge) x 250m + worker (1+1) x 100m + redis 50m + migration 250m = 1000m
    template(*minimal_set("--set", "quota.requests.cpu=1"))
    template_error(*minimal_set("--set", "quota.requests.cpu=999m"))
    # without migration and surge headroom the same release needs 400m
    template(
        *minimal_set(
            "--set",
            "quota.requests.cpu=400m",
            "--set",
            "migration.enabled=false",
            "--set",
            "quota.rolloutHeadroom=false",
        )
    )


def test_all_validation_problems_are_reported_at_once() -> None:
    error = template_error()
    assert error.count("VALUES VALIDATION") == 1
    assert "(4 problems)" in error
    for needle in (
        "image.tag is required",
        "secrets.existingSecret is required",
        "hosts is required",
        "networkPolicy.egress.database.cidr is required",
    ):
        assert needle in error


def test_cross_field_validation() -> None:
    error = template_error(
        *minimal_set(
            "--set",
            "web.replicas=2",
            "--set",
            "locales.default=fr",
            "--set",
            "storage.type=s3",
            "--set",
            "smtp.host=smtp.example.org",
        )
    )
    assert "locales.default=fr is not in locales.available=en" in error
    assert "storage.s3.bucket is required with storage.type=s3" in error
    assert "networkPolicy.egress.s3 is empty" in error
    assert "networkPolicy.egress.smtp is empty" in error
    rwo = template_error(*minimal_set("--set", "web.replicas=2"))
    assert "ReadWriteOnce" in rwo and "web.replicas=2" in rwo


def test_limit_range_max_is_checked() -> None:
    error = template_error(*minimal_set("--set", "limitRange.max.cpu=500m"))
    assert "web.resources.limits.cpu=1 exceeds limitRange.max.cpu=500m" in error
    assert "migration.resources.limits.cpu=1 exceeds limitRange.max.cpu=500m" in error


def test_values_file_documents_every_value() -> None:
    """Every leaf of values.yaml has an `## @param` line (bitnami convention)."""
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    documented = set(re.findall(r"^\s*## @param (\S+)", (CHART / "values.yaml").read_text(), re.M))

    def leaves(node: Any, prefix: str = "") -> Iterator[str]:
        if isinstance(node, dict) and node:
            for key, value in node.items():
                path = f"{prefix}.{key}" if prefix else key
                if path in documented:
                    yield path
                else:
                    yield from leaves(value, path)
        else:
            yield prefix

    missing = [leaf for leaf in leaves(values) if leaf not in documented]
    assert not missing, f"values without ## @param: {missing}"


def test_a_decidim_version_change_leaves_the_bundled_redis_pod_as_it_is() -> None:
    """Redis keeps Sidekiq's queue in memory: its pod template (and so its pod) must not
    change with the Decidim version; its version label is Redis' own."""
    ci = str(CHART / "ci" / "values-minimal.yaml")
    old = template("-f", ci, "--set", "image.tag=0.27.7")
    new = template("-f", ci, "--set", "image.tag=0.28.4")
    redis = f"{FULLNAME}-redis"
    old_pod = one(tuple(old), "Deployment", redis)["spec"]["template"]
    new_pod = one(tuple(new), "Deployment", redis)["spec"]["template"]
    assert old_pod == new_pod
    assert old_pod["metadata"]["labels"]["app.kubernetes.io/version"] != "0.27.7"
    # The Decidim pods do change.
    web = f"{FULLNAME}-web"
    assert (
        one(tuple(old), "Deployment", web)["spec"]["template"]
        != one(tuple(new), "Deployment", web)["spec"]["template"]
    )
