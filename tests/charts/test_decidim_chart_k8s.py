"""Installs charts/decidim into the test control plane (kube-apiserver + kwok nodes).

- every ci/ scenario passes a server-side dry run (the real API schemas and admission);
- a release installs into a namespace that enforces the restricted Pod Security level,
  under its own ResourceQuota: every pod is admitted, the Deployments become available
  and the migration Job completes (kwok plays the kubelet);
- maintenance mode and a version change are applied with `helm upgrade`.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.charts.test_decidim_chart import CHART, CI_FILES, helm
from tests.fixtures.kube import KubeCluster

pytestmark = pytest.mark.k8s

RELEASE = "springfield"
FULLNAME = f"{RELEASE}-decidim"
SECRET_NAME = "springfield-decidim"  # as in ci/values-s3-storage.yaml
S3_VALUES = str(CHART / "ci" / "values-s3-storage.yaml")


def kube_helm(
    kube: KubeCluster, *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [helm(), "--kubeconfig", str(kube.kubeconfig), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def install(kube: KubeCluster, namespace: str) -> None:
    """``helm install`` of the release with ci/values-s3-storage.yaml, waiting for its
    Deployments and Jobs."""
    kube_helm(
        kube,
        "install", RELEASE, str(CHART),
        "--namespace", namespace,
        "-f", S3_VALUES,
        "--wait", "--wait-for-jobs", "--timeout", "4m",
    )  # fmt: skip


@pytest.fixture
def namespace(kube: KubeCluster) -> Iterator[str]:
    """A fresh namespace enforcing the restricted Pod Security level, as osp-ops makes."""
    from kubernetes import client

    name = f"decidim-{uuid.uuid4().hex[:8]}"
    with kube.api_client() as api:
        core = client.CoreV1Api(api)
        core.create_namespace(
            client.V1Namespace(
                metadata=client.V1ObjectMeta(
                    name=name,
                    labels={
                        "pod-security.kubernetes.io/enforce": "restricted",
                        "pod-security.kubernetes.io/warn": "restricted",
                    },
                )
            )
        )
        # The controller manager adds the default ServiceAccount, which bare pods (the
        # helm test pod) need even in a dry run.
        _wait_for(
            lambda: any(
                sa.metadata.name == "default"
                for sa in core.list_namespaced_service_account(name).items
            ),
            f"the default ServiceAccount of {name}",
        )
        # Test data only: the chart reads these keys, their values do not matter here.
        core.create_namespaced_secret(
            name,
            client.V1Secret(
                metadata=client.V1ObjectMeta(name=SECRET_NAME),
                string_data={
                    "DATABASE_URL": "postgres://decidim@db.invalid/decidim",
                    "SECRET_KEY_BASE": "test-only",
                    "SMTP_PASSWORD": "test-only",
                    "AWS_ACCESS_KEY_ID": "test-only",
                    "AWS_SECRET_ACCESS_KEY": "test-only",
                },
            ),
        )
        try:
            yield name
        finally:
            core.delete_namespace(name)


def rendered(ci_file: str, *args: str) -> list[dict[str, Any]]:
    out = subprocess.run(
        [helm(), "template", RELEASE, str(CHART), "-f", str(CHART / "ci" / ci_file), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


@pytest.mark.parametrize("ci_file", [f.name for f in CI_FILES])
def test_server_side_dry_run(kube: KubeCluster, namespace: str, ci_file: str) -> None:
    """The apiserver accepts every rendered object (schemas, defaults, admission)."""
    from kubernetes import client, dynamic

    with kube.api_client() as api:
        dyn = dynamic.DynamicClient(api)
        for obj in rendered(ci_file):
            resource = dyn.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
            try:
                resource.create(
                    body=obj,
                    namespace=namespace,
                    query_params=[("dryRun", "All"), ("fieldValidation", "Strict")],
                )
            except client.ApiException as e:  # pragma: no cover - the failure message
                pytest.fail(f"{ci_file}: {obj['kind']}/{obj['metadata']['name']}: {e.body}")


def _wait_for(predicate: Any, what: str, timeout: float = 120.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.5)


def _events(kube: KubeCluster, namespace: str) -> list[str]:
    from kubernetes import client

    with kube.api_client() as api:
        items = client.CoreV1Api(api).list_namespaced_event(namespace).items
    return [f"{e.reason}: {e.message}" for e in items if e.type == "Warning"]


def test_install_upgrade_and_suspend(kube: KubeCluster, namespace: str) -> None:
    from kubernetes import client

    install(kube, namespace)

    with kube.api_client() as api:
        apps = client.AppsV1Api(api)
        batch = client.BatchV1Api(api)
        core = client.CoreV1Api(api)
        for name, replicas in (
            (f"{FULLNAME}-web", 2),
            (f"{FULLNAME}-worker", 1),
            (f"{FULLNAME}-redis", 1),
        ):
            dep = apps.read_namespaced_deployment(name, namespace)
            assert dep.status.available_replicas == replicas, (name, _events(kube, namespace))
        job = batch.read_namespaced_job(f"{FULLNAME}-migrate-0-28-4", namespace)
        assert job.status.succeeded == 1
        forbidden = [e for e in _events(kube, namespace) if "FailedCreate" in e or "forbidden" in e]
        assert not forbidden, forbidden
        quota = core.read_namespaced_resource_quota(f"{FULLNAME}-quota", namespace)
        assert quota.status.used["pods"] != "0"

    # Suspend: web and worker go to 0, the Service selects the maintenance page.
    kube_helm(
        kube,
        "upgrade", RELEASE, str(CHART),
        "--namespace", namespace,
        "-f", S3_VALUES,
        "--set", "maintenance.enabled=true",
        "--wait", "--timeout", "3m",
    )  # fmt: skip
    with kube.api_client() as api:
        apps = client.AppsV1Api(api)
        core = client.CoreV1Api(api)
        assert apps.read_namespaced_deployment(f"{FULLNAME}-web", namespace).spec.replicas == 0
        assert apps.read_namespaced_deployment(f"{FULLNAME}-worker", namespace).spec.replicas == 0
        page = apps.read_namespaced_deployment(f"{FULLNAME}-maintenance", namespace)
        assert page.status.available_replicas == 1
        service = core.read_namespaced_service(FULLNAME, namespace)
        assert service.spec.selector["app.kubernetes.io/component"] == "maintenance"

    # Upgrade to the next version while suspended: a new migration Job, the old one gone.
    kube_helm(
        kube,
        "upgrade", RELEASE, str(CHART),
        "--namespace", namespace,
        "-f", S3_VALUES,
        "--set", "maintenance.enabled=true",
        "--set", "image.tag=0.28.5",
        "--wait", "--wait-for-jobs", "--timeout", "3m",
    )  # fmt: skip
    with kube.api_client() as api:
        batch = client.BatchV1Api(api)
        jobs = {j.metadata.name: j for j in batch.list_namespaced_job(namespace).items}
        assert f"{FULLNAME}-migrate-0-28-5" in jobs
        assert jobs[f"{FULLNAME}-migrate-0-28-5"].status.succeeded == 1
        assert (
            jobs[f"{FULLNAME}-migrate-0-28-5"].metadata.annotations["osp-ops.io/target-version"]
            == "0.28.5"
        )
        _wait_for(
            lambda: (
                f"{FULLNAME}-migrate-0-28-4"
                not in {j.metadata.name for j in batch.list_namespaced_job(namespace).items}
            ),
            "the old migration Job to be removed",
        )

    status = json.loads(
        kube_helm(kube, "status", RELEASE, "--namespace", namespace, "-o", "json").stdout
    )
    assert status["info"]["status"] == "deployed"
    assert "MAINTENANCE MODE" in status["info"]["notes"]
    kube_helm(kube, "uninstall", RELEASE, "--namespace", namespace, "--wait")


def test_helm_test_runs_the_health_pod(kube: KubeCluster, namespace: str) -> None:
    """`helm test`: the test NetworkPolicies, then the pod, admitted under the restricted
    level and the tenant's quota (kwok plays curl's success); the policies go when the
    test passed, the pod stays for `helm test --logs`."""
    from kubernetes import client

    install(kube, namespace)
    result = kube_helm(kube, "test", RELEASE, "--namespace", namespace, "--timeout", "2m")
    assert f"TEST SUITE:     {FULLNAME}-test-health" in result.stdout, result.stdout
    assert "Phase:          Succeeded" in result.stdout, result.stdout
    with kube.api_client() as api:
        core = client.CoreV1Api(api)
        pod = core.read_namespaced_pod(f"{FULLNAME}-test-health", namespace)
        assert pod.status.phase == "Succeeded"
        assert pod.spec.containers[0].image == "docker.io/curlimages/curl:8.11.1"
        policies = client.NetworkingV1Api(api).list_namespaced_network_policy(namespace).items
        names = {p.metadata.name for p in policies}
        assert f"{FULLNAME}-default-deny" in names
        assert not {f"{FULLNAME}-test-egress", f"{FULLNAME}-test-ingress"} & names
    forbidden = [e for e in _events(kube, namespace) if "FailedCreate" in e or "forbidden" in e]
    assert not forbidden, forbidden
    kube_helm(kube, "uninstall", RELEASE, "--namespace", namespace, "--wait")
