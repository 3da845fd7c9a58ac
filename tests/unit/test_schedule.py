"""Backups are due when a scheduled time passed since the last one, in local time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from osp_ops.domain.schedule import is_due, last_scheduled, next_scheduled

pytestmark = pytest.mark.unit

NIGHTLY = "0 2 * * *"


def test_due_when_never_backed_up() -> None:
    assert is_due(NIGHTLY, "Europe/Paris", None, datetime(2026, 11, 28, 12, tzinfo=UTC))


def test_not_due_after_tonights_backup() -> None:
    # 02:00 Paris = 01:00 UTC in November.
    last = datetime(2026, 11, 28, 1, 5, tzinfo=UTC)
    assert not is_due(NIGHTLY, "Europe/Paris", last, datetime(2026, 11, 28, 23, tzinfo=UTC))
    assert is_due(NIGHTLY, "Europe/Paris", last, datetime(2026, 11, 29, 1, 0, 30, tzinfo=UTC))


def test_time_zone_matters() -> None:
    last = datetime(2026, 11, 27, 12, tzinfo=UTC)
    now = datetime(2026, 11, 28, 1, 30, tzinfo=UTC)  # 02:30 Paris, 20:30 in Montreal
    assert is_due(NIGHTLY, "Europe/Paris", last, now)
    assert not is_due(NIGHTLY, "America/Montreal", last, now)


@given(
    st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1)),
    st.sampled_from(["0 2 * * *", "*/15 * * * *", "30 3 * * sun", "0 0 1 * *"]),
    st.sampled_from(["Europe/Paris", "UTC", "America/Sao_Paulo", "Asia/Tokyo"]),
)
def test_last_is_before_now_and_next_after(naive: datetime, schedule: str, tz: str) -> None:
    now = naive.replace(tzinfo=UTC)
    assert last_scheduled(schedule, tz, now) <= now < next_scheduled(schedule, tz, now)
    # Right after a backup at now, nothing is due until the next scheduled time.
    assert not is_due(schedule, tz, now, now)
    later = next_scheduled(schedule, tz, now) + timedelta(seconds=1)
    assert is_due(schedule, tz, now, later)
