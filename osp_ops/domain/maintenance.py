"""Maintenance windows: when disruptive work (upgrades) may run for a tenant."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from osp_ops.domain.spec import MaintenanceWindow

_DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def _starts_around(window: MaintenanceWindow, local: datetime) -> list[datetime]:
    """Window starts from yesterday to a week ahead, in local time."""
    days = {_DAYS.index(d.value) for d in window.days}
    out = []
    for offset in range(-1, 8):
        day = (local + timedelta(days=offset)).date()
        if day.weekday() in days:
            out.append(datetime.combine(day, window.start, tzinfo=local.tzinfo))
    return out


def is_open(window: MaintenanceWindow, time_zone: str, now: datetime) -> bool:
    """True when ``now`` (aware) falls inside the window, in the tenant's time zone."""
    local = now.astimezone(ZoneInfo(time_zone))
    length = timedelta(minutes=window.duration_minutes)
    return any(s <= local < s + length for s in _starts_around(window, local))


def next_start(window: MaintenanceWindow, time_zone: str, now: datetime) -> datetime:
    """The next time the window opens after ``now`` (aware, in the tenant's zone)."""
    local = now.astimezone(ZoneInfo(time_zone))
    return min(s for s in _starts_around(window, local) if s > local)
