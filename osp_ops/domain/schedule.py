"""Schedules: is a tenant's backup due, given its cron schedule and its last backup?

A backup is due when a scheduled time has passed since the last one (or there is no
last one). Schedules are read in the tenant's time zone.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from croniter import croniter


def last_scheduled(schedule: str, time_zone: str, now: datetime) -> datetime:
    """The most recent scheduled time at or before ``now`` (aware)."""
    local = now.astimezone(ZoneInfo(time_zone))
    it = croniter(schedule, local)
    prev: datetime = it.get_prev(datetime)
    # croniter's get_prev excludes ``now`` itself; include an exact match.
    if croniter.match(schedule, local.replace(second=0, microsecond=0)) and local.second == 0:
        return local.replace(microsecond=0)
    return prev


def next_scheduled(schedule: str, time_zone: str, now: datetime) -> datetime:
    """The next scheduled time after ``now`` (aware)."""
    nxt: datetime = croniter(schedule, now.astimezone(ZoneInfo(time_zone))).get_next(datetime)
    return nxt


def is_due(schedule: str, time_zone: str, last: datetime | None, now: datetime) -> bool:
    """True when a scheduled time has come since ``last`` (or nothing ran yet)."""
    if last is None:
        return True
    return last < last_scheduled(schedule, time_zone, now)
