"""Maintenance windows in the tenant's time zone."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest

from osp_ops.domain.maintenance import is_open, next_start
from osp_ops.domain.spec import MaintenanceWindow, Weekday

pytestmark = pytest.mark.unit

SUNDAY_3AM = MaintenanceWindow(days=(Weekday.sun,), start=time(3, 0), duration_minutes=120)


def test_open_inside_window_in_local_time() -> None:
    # Sunday 2026-11-29 03:30 in Paris is 02:30 UTC (CET, UTC+1).
    assert is_open(SUNDAY_3AM, "Europe/Paris", datetime(2026, 11, 29, 2, 30, tzinfo=UTC))


def test_closed_before_and_after() -> None:
    assert not is_open(SUNDAY_3AM, "Europe/Paris", datetime(2026, 11, 29, 1, 59, tzinfo=UTC))
    assert not is_open(SUNDAY_3AM, "Europe/Paris", datetime(2026, 11, 29, 4, 0, tzinfo=UTC))
    assert not is_open(SUNDAY_3AM, "Europe/Paris", datetime(2026, 11, 28, 2, 30, tzinfo=UTC))


def test_window_crossing_midnight() -> None:
    late = MaintenanceWindow(days=(Weekday.sat,), start=time(23, 0), duration_minutes=180)
    # Sunday 01:00 Paris is still inside Saturday's 23:00 + 3h window.
    assert is_open(late, "Europe/Paris", datetime(2026, 11, 29, 0, 0, tzinfo=UTC))


def test_next_start_is_the_following_window() -> None:
    start = next_start(SUNDAY_3AM, "Europe/Paris", datetime(2026, 11, 28, 12, 0, tzinfo=UTC))
    assert (start.year, start.month, start.day, start.hour) == (2026, 11, 29, 3)
    again = next_start(SUNDAY_3AM, "Europe/Paris", datetime(2026, 11, 29, 2, 30, tzinfo=UTC))
    assert (again.month, again.day) == (12, 6)
