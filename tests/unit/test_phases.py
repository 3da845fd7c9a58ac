"""Tenant lifecycle: every transition the table does not allow is refused, clearly."""

from __future__ import annotations

import itertools
from collections import deque

import pytest

from osp_ops.domain.errors import IllegalTransitionError
from osp_ops.domain.phases import TRANSITIONS, Phase, check_transition

pytestmark = pytest.mark.unit

ALLOWED = {
    ("requested", "provisioning"), ("requested", "deleting"),
    ("provisioning", "ready"), ("provisioning", "failed"),
    ("ready", "updating"), ("ready", "suspended"), ("ready", "deleting"),
    ("updating", "ready"), ("updating", "failed"), ("updating", "rolling-back"),
    ("rolling-back", "ready"), ("rolling-back", "failed"),
    ("suspended", "ready"), ("suspended", "updating"), ("suspended", "deleting"),
    ("deleting", "deleted"), ("deleting", "failed"),
    ("deleted", "provisioning"),
    ("failed", "provisioning"), ("failed", "updating"), ("failed", "deleting"),
    ("failed", "ready"), ("failed", "suspended"), ("failed", "rolling-back"),
}  # fmt: skip


def test_table_is_the_documented_one() -> None:
    assert {(str(a), str(b)) for a, targets in TRANSITIONS.items() for b in targets} == ALLOWED
    assert set(TRANSITIONS) == set(Phase)


@pytest.mark.parametrize(
    ("current", "target"),
    [(a, b) for a, b in itertools.permutations(Phase, 2) if (str(a), str(b)) not in ALLOWED],
    ids=str,
)
def test_illegal_transition_is_refused_with_a_clear_message(current: Phase, target: Phase) -> None:
    with pytest.raises(IllegalTransitionError) as exc:
        check_transition("lyon", current, target)
    msg = str(exc.value)
    assert f"tenant 'lyon' is {current}; it cannot become {target}" in msg
    for allowed in TRANSITIONS[current]:
        assert str(allowed) in msg.split("allowed from")[1]
    assert exc.value.exit_code == 4


@pytest.mark.parametrize(("current", "target"), sorted(ALLOWED))
def test_allowed_transitions_pass(current: str, target: str) -> None:
    check_transition("lyon", Phase(current), Phase(target))


@pytest.mark.parametrize("phase", list(Phase))
def test_staying_is_allowed(phase: Phase) -> None:
    check_transition("lyon", phase, phase)


def test_every_phase_is_reachable_and_can_reach_deleted() -> None:
    def reach(start: Phase) -> set[Phase]:
        seen, queue = {start}, deque([start])
        while queue:
            for nxt in TRANSITIONS[queue.popleft()]:
                if nxt not in seen:
                    seen.add(nxt)
                    queue.append(nxt)
        return seen

    assert reach(Phase.requested) == set(Phase)
    for phase in Phase:
        assert Phase.deleted in reach(phase) or phase is Phase.deleted
