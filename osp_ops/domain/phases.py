"""The tenant lifecycle: phases and the transitions between them."""

from __future__ import annotations

from enum import StrEnum

from osp_ops.domain.errors import IllegalTransitionError


class Phase(StrEnum):
    """Where a tenant is in its life."""

    requested = "requested"
    provisioning = "provisioning"
    ready = "ready"
    updating = "updating"
    rolling_back = "rolling-back"  # an upgrade that failed goes back to its old version
    suspended = "suspended"
    deleting = "deleting"
    deleted = "deleted"
    failed = "failed"


# Every allowed move. `failed` can be left by retrying whatever failed (provisioning,
# updating, deleting, an upgrade's rollback) or by an operator fixing it by hand (ready).
TRANSITIONS: dict[Phase, frozenset[Phase]] = {
    Phase.requested: frozenset({Phase.provisioning, Phase.deleting}),
    Phase.provisioning: frozenset({Phase.ready, Phase.failed}),
    Phase.ready: frozenset({Phase.updating, Phase.suspended, Phase.deleting}),
    Phase.updating: frozenset({Phase.ready, Phase.failed, Phase.rolling_back}),
    Phase.rolling_back: frozenset({Phase.ready, Phase.failed}),
    Phase.suspended: frozenset({Phase.ready, Phase.updating, Phase.deleting}),
    Phase.deleting: frozenset({Phase.deleted, Phase.failed}),
    Phase.deleted: frozenset({Phase.provisioning}),
    Phase.failed: frozenset(
        {
            Phase.provisioning,
            Phase.updating,
            Phase.rolling_back,
            Phase.deleting,
            Phase.ready,
            Phase.suspended,
        }
    ),
}


def check_transition(tenant: str, current: Phase, target: Phase) -> None:
    """Raise IllegalTransitionError unless ``current -> target`` is allowed.

    Staying in the same phase is always allowed (reruns are idempotent).
    """
    if current == target or target in TRANSITIONS[current]:
        return
    allowed = ", ".join(sorted(TRANSITIONS[current])) or "none"
    raise IllegalTransitionError(
        f"tenant {tenant!r} is {current}; it cannot become {target} (allowed from {current}: {allowed})"
    )
