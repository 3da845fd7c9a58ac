"""A Decidim version change on Kubernetes: the new migration Job completes before the
app's Deployments change (no pod of the new version against the old schema), and the
bundled Redis pod, which keeps Sidekiq's queue in memory, is not restarted. Against the
test control plane (kube-apiserver with kwok)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from osp_ops.platforms.base import Event
from osp_ops.platforms.kubernetes import KubernetesPlatform
from osp_ops.render.manifests import migration_first
from tests.factories import kube_spec
from tests.fixtures.k8s_operator import admin, make_volume
from tests.fixtures.kube import KubeCluster

pytestmark = pytest.mark.k8s

SECRETS = {"db_password": "pw-one", "secret_key": "sk-" + "y" * 60, "admin_password": "adm"}


def _time(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def _items(kube: KubeCluster, path: str, selector: str) -> list[dict[str, Any]]:
    doc = admin(kube).request("GET", path, query=[("labelSelector", selector)])
    items: list[dict[str, Any]] = doc["items"]
    return items


def test_migration_job_completes_before_the_new_pods_and_redis_stays(
    kube: KubeCluster, platform: KubernetesPlatform
) -> None:
    slug, ns = "rouen", "osp-rouen"
    spec = kube_spec(slug, app={"name": "decidim", "version": "0.27.7"})
    make_volume(kube, slug)
    platform.provision(spec=spec, secrets=SECRETS, reporter=lambda e: None)
    platform.deploy(spec=spec, version="0.27.7", secrets=SECRETS, reporter=lambda e: None)
    redis_pods = _items(kube, f"/api/v1/namespaces/{ns}/pods", "app.kubernetes.io/component=redis")
    assert len(redis_pods) == 1
    redis_uid = redis_pods[0]["metadata"]["uid"]

    events: list[Event] = []
    platform.deploy(spec=spec, version="0.28.4", secrets=SECRETS, reporter=events.append)
    messages = [e.message for e in events]
    job_done = next(
        i for i, m in enumerate(messages) if m.startswith("Job/decidim-migrate-0-28-4: Complete")
    )
    web_applied = messages.index("applied Deployment/decidim-web")
    worker_applied = messages.index("applied Deployment/decidim-worker")
    assert job_done < web_applied and job_done < worker_applied, messages
    assert messages.index("applied Job/decidim-migrate-0-28-4") < job_done

    # As the API server recorded it: the new ReplicaSets were made after the Job completed.
    job = admin(kube).get(f"/apis/batch/v1/namespaces/{ns}/jobs/decidim-migrate-0-28-4")
    completed = _time(job["status"]["completionTime"])
    sets = _items(
        kube, f"/apis/apps/v1/namespaces/{ns}/replicasets", "app.kubernetes.io/component=web"
    )
    new = [
        rs
        for rs in sets
        if rs["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":0.28.4")
    ]
    assert len(new) == 1 and _time(new[0]["metadata"]["creationTimestamp"]) >= completed

    # Redis: same pod, never restarted.
    redis_pods = _items(kube, f"/api/v1/namespaces/{ns}/pods", "app.kubernetes.io/component=redis")
    assert [p["metadata"]["uid"] for p in redis_pods] == [redis_uid]
    platform.destroy(spec=spec, reporter=lambda e: None)


def test_only_the_app_deployments_wait_for_the_migration() -> None:
    def obj(kind: str, name: str, image: str) -> dict[str, Any]:
        pod = {"spec": {"containers": [{"name": "c", "image": image}]}}
        return {"kind": kind, "metadata": {"name": name}, "spec": {"template": pod}}

    job = obj("Job", "migrate", "decidim:0.28.4")
    web = obj("Deployment", "web", "decidim:0.28.4")
    redis = obj("Deployment", "redis", "redis:7.2")
    service = {"kind": "Service", "metadata": {"name": "decidim"}, "spec": {}}
    assert migration_first([service, redis, web, job], [job]) == ([service, redis, job], [web])
    assert migration_first([service, web], []) == ([service, web], [])


def test_a_one_time_task_runs_as_a_job_of_the_version_image(
    kube: KubeCluster, platform: KubernetesPlatform
) -> None:
    slug, ns = "evreux", "osp-evreux"
    spec = kube_spec(slug)
    make_volume(kube, slug)
    platform.provision(spec=spec, secrets=SECRETS, reporter=lambda e: None)
    platform.deploy(spec=spec, version="0.28.4", secrets=SECRETS, reporter=lambda e: None)
    command = ["bundle", "exec", "rails", "decidim:upgrade:fix_short_urls"]
    result = platform.run_task(
        spec=spec, version="0.28.4", task="upgrade-0-28-4-7", secrets=SECRETS,
        reporter=lambda e: None, command=command,
    )  # fmt: skip
    assert result.ok, result.output
    job = admin(kube).get(f"/apis/batch/v1/namespaces/{ns}/jobs/decidim-upgrade-0-28-4-7")
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == command
    assert container["image"].endswith(":0.28.4")
    assert "ADMIN_PASSWORD" not in {e["name"] for e in container.get("env", [])}
    platform.destroy(spec=spec, reporter=lambda e: None)
