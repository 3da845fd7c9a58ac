"""Readiness of Jobs and Deployments: pure functions over the objects the API returns.

No I/O here: ``apply.py`` polls the API server and asks these functions whether what
it read is done. Each takes the object as a JSON mapping (``metadata``, ``spec``,
``status``), as ``Kube.get`` returns it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

RUNNING = "Running"
COMPLETE = "Complete"
FAILED = "Failed"


def job_state(job: Mapping[str, Any]) -> str:
    """``Complete`` or ``Failed`` once the Job has that condition set to True, else ``Running``."""
    status = job.get("status") or {}
    for cond in status.get("conditions") or []:
        if cond.get("status") == "True" and cond.get("type") in (COMPLETE, FAILED):
            return str(cond["type"])
    return RUNNING


def job_failure(job: Mapping[str, Any]) -> str:
    """The messages of the Job's conditions, joined (why it failed)."""
    conds = [c.get("message", "") for c in (job.get("status") or {}).get("conditions") or []]
    return "; ".join(filter(None, conds))


def deployment_ready(dep: Mapping[str, Any]) -> bool:
    """Whether the Deployment's controller saw its latest generation and it is Available
    with exactly the wanted replicas, all updated (none left when scaled to zero)."""
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


def rollout_note(dep: Mapping[str, Any]) -> str:
    """``<available>/<wanted> available``: the progress line of a Deployment's rollout."""
    st = dep.get("status") or {}
    return f"{st.get('availableReplicas', 0)}/{dep['spec'].get('replicas', 1)} available"
