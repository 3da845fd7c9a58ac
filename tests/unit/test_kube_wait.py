"""Job and Deployment readiness (``platforms/kubernetes/wait.py``), pure."""

from __future__ import annotations

from typing import Any

import pytest

from osp_ops.platforms.kubernetes.wait import (
    deployment_ready,
    job_failure,
    job_state,
    rollout_note,
)

pytestmark = pytest.mark.unit


def job(*conditions: dict[str, str]) -> dict[str, Any]:
    return {"metadata": {"name": "decidim-migrate"}, "status": {"conditions": list(conditions)}}


def dep(
    *,
    replicas: int = 2,
    generation: int = 3,
    observed: int = 3,
    available: str = "True",
    updated: int = 2,
    avail: int = 2,
    current: int = 2,
) -> dict[str, Any]:
    return {
        "metadata": {"name": "decidim-web", "generation": generation},
        "spec": {"replicas": replicas},
        "status": {
            "observedGeneration": observed,
            "conditions": [{"type": "Available", "status": available}],
            "updatedReplicas": updated,
            "availableReplicas": avail,
            "replicas": current,
        },
    }


def test_a_job_without_status_is_running() -> None:
    assert job_state({"metadata": {"name": "j"}}) == "Running"
    assert job_state({"status": {"conditions": None}}) == "Running"


@pytest.mark.parametrize("kind", ["Complete", "Failed"])
def test_a_job_is_done_when_its_condition_is_true(kind: str) -> None:
    assert job_state(job({"type": kind, "status": "True"})) == kind
    assert job_state(job({"type": kind, "status": "False"})) == "Running"


def test_other_job_conditions_do_not_end_it() -> None:
    assert job_state(job({"type": "Suspended", "status": "True"})) == "Running"
    assert (
        job_state(
            job({"type": "FailureTarget", "status": "True"}, {"type": "Failed", "status": "True"})
        )
        == "Failed"
    )


def test_job_failure_joins_the_condition_messages() -> None:
    failed = job(
        {"type": "FailureTarget", "status": "True", "message": "pod failed"},
        {"type": "Failed", "status": "True", "message": "BackoffLimitExceeded"},
        {"type": "Other", "status": "True"},
    )
    assert job_failure(failed) == "pod failed; BackoffLimitExceeded"
    assert job_failure({"status": {}}) == ""


def test_a_deployment_is_ready_when_available_with_every_replica_updated() -> None:
    assert deployment_ready(dep())


@pytest.mark.parametrize(
    "change",
    [
        {"observed": 2},  # the controller has not seen the latest spec
        {"available": "False"},
        {"updated": 1},  # a rollout in progress
        {"avail": 1},
        {"current": 3},  # an old pod still terminating
    ],
)
def test_a_deployment_is_not_ready(change: dict[str, Any]) -> None:
    assert not deployment_ready(dep(**change))


def test_a_deployment_scaled_to_zero_is_ready_once_no_pod_is_left() -> None:
    assert deployment_ready(dep(replicas=0, current=0, available="False", updated=0, avail=0))
    assert not deployment_ready(dep(replicas=0, current=1, available="False", updated=0, avail=0))


def test_replicas_default_to_one() -> None:
    one = dep(updated=1, avail=1, current=1)
    del one["spec"]["replicas"]
    assert deployment_ready(one)
    assert rollout_note(one) == "1/1 available"


def test_a_new_deployment_without_status_is_not_ready() -> None:
    fresh = {"metadata": {"name": "d", "generation": 1}, "spec": {"replicas": 1}}
    assert not deployment_ready(fresh)
    assert rollout_note(fresh) == "0/1 available"
