"""Chart hygiene of charts/decidim: versions, pinned images, and the ``helm test`` pod.

- ``appVersion`` is the newest Decidim of the app catalog (what a new tenant runs);
- ``kubeVersion`` is set, and the Kubernetes the tests run accepts it;
- every image the chart can run has an exact version tag (never ``7-alpine``);
- ``templates/tests/`` holds the ``helm test`` pod, which passes the restricted Pod
  Security checks and may reach exactly DNS and the pods behind the Service; osp-ops
  renders without it (``--skip-tests``);
- validation lives in ``templates/_validate.tpl``, apart from the other helpers.

Needs the helm binary (integration tier), found as in test_decidim_chart.py.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from osp_ops.domain.catalog import default_catalog
from tests.charts.test_decidim_chart import (
    CHART,
    FULLNAME,
    RELEASE,
    REQUIRED_LABELS,
    minimal_set,
    run_helm,
    template,
)
from tests.charts.test_network_matrix import _allowed

pytestmark = pytest.mark.integration

CHART_YAML = yaml.safe_load((CHART / "Chart.yaml").read_text("utf-8"))
# An exact version, optionally with a variant suffix: 7.4.1-alpine, 1.27.3-alpine, 8.11.1.
PINNED = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+([-.][A-Za-z0-9.]+)?")
HOOK = "helm.sh/hook"
TEST_POD = f"{FULLNAME}-test-health"


def hooks(objs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for o in objs if HOOK in (o["metadata"].get("annotations") or {})]


def test_app_version_is_the_catalogs_newest_decidim() -> None:
    decidim = default_catalog().app("decidim")
    assert CHART_YAML["appVersion"] == decidim.latest.version, (
        f"charts/decidim/Chart.yaml appVersion {CHART_YAML['appVersion']} is not the "
        f"catalog's newest Decidim {decidim.latest.version} (osp_ops/domain/catalog.yaml): "
        "set appVersion and bump the chart version"
    )
    assert decidim.latest.tag == CHART_YAML["appVersion"]


def test_kube_version_is_set_and_the_test_cluster_satisfies_it() -> None:
    assert CHART_YAML.get("kubeVersion") == ">=1.25.0-0"
    # The test control plane is 1.34; a cluster older than 1.25 is refused by helm.
    ok = run_helm("template", RELEASE, str(CHART), *minimal_set("--kube-version", "1.34.4"))
    assert ok.returncode == 0, ok.stderr
    old = run_helm("template", RELEASE, str(CHART), *minimal_set("--kube-version", "1.24.9"))
    assert old.returncode != 0
    assert "requires kubeVersion: >=1.25.0-0" in old.stderr


def test_every_image_has_an_exact_version_tag() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text("utf-8"))
    default_tags = {
        "redis.bundled.image.tag": values["redis"]["bundled"]["image"]["tag"],
        "maintenance.image.tag": values["maintenance"]["image"]["tag"],
        "tests.image.tag": values["tests"]["image"]["tag"],
    }
    for where, tag in default_tags.items():
        assert PINNED.fullmatch(str(tag)), f"{where}={tag!r} is not an exact version"
    # Every container of every pod the chart renders, the bundled Redis, the maintenance
    # page and the test pod included (image.tag is the catalog's exact Decidim version).
    objs = template(*minimal_set("--set", "maintenance.enabled=true"))
    images = set()
    for obj in objs:
        pod = obj["spec"] if obj["kind"] == "Pod" else obj.get("spec", {}).get("template", {})
        spec = pod.get("spec", pod) if obj["kind"] != "Pod" else pod
        for container in [*spec.get("containers", []), *spec.get("initContainers", [])]:
            images.add(container["image"])
    repos = {image.rpartition(":")[0] for image in images}
    assert {
        "docker.io/library/redis",
        "docker.io/nginxinc/nginx-unprivileged",
        "docker.io/curlimages/curl",
        "ghcr.io/decidim/decidim",
    } <= repos
    for image in images:
        assert PINNED.fullmatch(image.rpartition(":")[2]), f"{image} has no exact version tag"


def test_the_helm_test_pod_requests_the_health_path_through_the_service() -> None:
    objs = template(*minimal_set())
    tests = hooks(objs)
    assert {(o["kind"], o["metadata"]["name"]) for o in tests} == {
        ("Pod", TEST_POD),
        ("NetworkPolicy", f"{FULLNAME}-test-egress"),
        ("NetworkPolicy", f"{FULLNAME}-test-ingress"),
    }
    assert all(o["metadata"]["annotations"][HOOK] == "test" for o in tests)
    pod = next(o for o in tests if o["kind"] == "Pod")
    # the policies are created first (lower weight), the pod stays for `helm test --logs`
    assert pod["metadata"]["annotations"]["helm.sh/hook-delete-policy"] == "before-hook-creation"
    assert all(
        o["metadata"]["annotations"]["helm.sh/hook-weight"] == "-5"
        for o in tests
        if o["kind"] == "NetworkPolicy"
    )
    for key in REQUIRED_LABELS:
        assert pod["metadata"]["labels"].get(key), key
    spec = pod["spec"]
    assert spec["restartPolicy"] == "Never"
    (container,) = spec["containers"]
    assert container["command"] == ["curl"]
    args = container["args"]
    assert args[-1] == f"http://{FULLNAME}:80/"  # the Service, web.probes.path
    assert "--fail" in args  # an error status fails the test; curl follows no redirect
    headers = [args[i + 1] for i, a in enumerate(args) if a == "--header"]
    assert headers == ["Host: participa.example.org", "X-Forwarded-Proto: https"]

    custom = template(
        *minimal_set("--set", "web.probes.path=/healthz", "--set", "service.port=8080")
    )
    pod = next(o for o in hooks(custom) if o["kind"] == "Pod")
    assert pod["spec"]["containers"][0]["args"][-1] == f"http://{FULLNAME}:8080/healthz"


def test_the_helm_test_pod_passes_the_restricted_level() -> None:
    pod = next(o for o in hooks(template(*minimal_set())) if o["kind"] == "Pod")
    spec = pod["spec"]
    assert spec["automountServiceAccountToken"] is False
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    sc = spec["containers"][0]["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"]["drop"] == ["ALL"]
    resources = spec["containers"][0]["resources"]
    for field in ("requests", "limits"):  # the tenant's ResourceQuota needs them
        assert {"cpu", "memory"} <= set(resources[field])


def test_the_helm_test_pod_reaches_only_dns_and_the_app() -> None:
    for suspended in (False, True):
        objs = template(*minimal_set("--set", f"maintenance.enabled={str(suspended).lower()}"))
        policies = [o for o in objs if o["kind"] == "NetworkPolicy"]
        pod = next(o for o in hooks(objs) if o["kind"] == "Pod")
        target = "maintenance" if suspended else "web"
        workloads = {
            o["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"]: o["spec"][
                "template"
            ]["metadata"]["labels"]
            for o in objs
            if o["kind"] == "Deployment" and o["spec"]["replicas"]
        }
        pods = {**workloads, "helm-test": pod["metadata"]["labels"]}
        egress = _allowed("Egress", pod["metadata"]["labels"], policies, pods)
        assert egress == {"dns:53/UDP", "dns:53/TCP", f"{target}:http/TCP"}
        ingress = _allowed("Ingress", pods[target], policies, pods)
        assert ingress == {"ingress-controller:http/TCP", "helm-test:http/TCP"}
        # the app's own egress and the other pods' ingress are as without the test
        assert "helm-test:http/TCP" not in _allowed("Ingress", pods["redis"], policies, pods)


def test_without_network_policies_or_tests_nothing_extra_is_rendered() -> None:
    objs = template(*minimal_set("--set", "networkPolicy.enabled=false"))
    assert [o["kind"] for o in hooks(objs)] == ["Pod"]
    assert not hooks(template(*minimal_set("--set", "tests.enabled=false")))


def test_osp_ops_renders_without_the_test_hooks() -> None:
    skipped = template(*minimal_set("--skip-tests"))
    assert not hooks(skipped)
    assert {o["kind"] for o in skipped} == {o["kind"] for o in template(*minimal_set())} - {"Pod"}


def test_validation_lives_in_its_own_template() -> None:
    helpers = (CHART / "templates" / "_helpers.tpl").read_text("utf-8")
    validate = (CHART / "templates" / "_validate.tpl").read_text("utf-8")
    assert 'define "decidim.validateValues"' in validate
    assert "validateValues" not in helpers
    assert "fail " not in helpers
