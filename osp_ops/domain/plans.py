"""Plans: what a small, medium or large municipality gets in resources and quotas."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict


class PlanName(StrEnum):
    """The plans a tenant can be on."""

    small = "small"
    medium = "medium"
    large = "large"


class Resources(BaseModel):
    """Requests and limits of one process, in Kubernetes quantities."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    cpu_request: str
    memory_request: str
    cpu_limit: str
    memory_limit: str


class Plan(BaseModel):
    """Sizes for one plan."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: PlanName
    web_replicas: int
    web: Resources
    worker_replicas: int
    worker: Resources
    # Tenant quota (ResourceQuota on Kubernetes, cgroup/disk expectations on hosts):
    # requests, and the larger ceiling on limits (limits add up past requests).
    quota_cpu: str
    quota_memory: str
    quota_limits_cpu: str
    quota_limits_memory: str
    quota_storage: str
    quota_pods: int
    # Worker processes of a Python app on hosts.
    app_workers: int


PLANS: dict[PlanName, Plan] = {
    PlanName.small: Plan(
        name=PlanName.small,
        web_replicas=1,
        web=Resources(
            cpu_request="250m", memory_request="512Mi", cpu_limit="1", memory_limit="1Gi"
        ),
        worker_replicas=1,
        worker=Resources(
            cpu_request="100m", memory_request="256Mi", cpu_limit="500m", memory_limit="512Mi"
        ),
        quota_cpu="2",
        quota_memory="4Gi",
        quota_limits_cpu="6",
        quota_limits_memory="8Gi",
        quota_storage="10Gi",
        quota_pods=10,
        app_workers=2,
    ),
    PlanName.medium: Plan(
        name=PlanName.medium,
        web_replicas=2,
        web=Resources(cpu_request="500m", memory_request="1Gi", cpu_limit="2", memory_limit="2Gi"),
        worker_replicas=1,
        worker=Resources(
            cpu_request="250m", memory_request="512Mi", cpu_limit="1", memory_limit="1Gi"
        ),
        quota_cpu="4",
        quota_memory="8Gi",
        quota_limits_cpu="12",
        quota_limits_memory="16Gi",
        quota_storage="50Gi",
        quota_pods=20,
        app_workers=4,
    ),
    PlanName.large: Plan(
        name=PlanName.large,
        web_replicas=3,
        web=Resources(cpu_request="1", memory_request="2Gi", cpu_limit="4", memory_limit="4Gi"),
        worker_replicas=2,
        worker=Resources(
            cpu_request="500m", memory_request="1Gi", cpu_limit="2", memory_limit="2Gi"
        ),
        quota_cpu="12",
        quota_memory="24Gi",
        quota_limits_cpu="32",
        quota_limits_memory="48Gi",
        quota_storage="200Gi",
        quota_pods=40,
        app_workers=8,
    ),
}
