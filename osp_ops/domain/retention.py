"""Grandfather-father-son retention: which backups to keep, and why. Pure, no I/O.

For each period kind with a count ``n`` (daily, weekly, monthly, yearly), walk the
backups newest first and keep the newest backup of each period until ``n`` distinct
periods are covered (the periods are those that *have* backups: a week without any does
not use up a slot). Periods are computed in ``tz`` (UTC by default): days by date,
weeks by ISO year and week, months, years.

Whatever the counts, the newest *verified* backup is always kept: a prune never
leaves the tenant without a backup known to restore. The selection is idempotent:
selecting again among the kept backups keeps them all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo

from osp_ops.domain.spec import Retention


@dataclass(frozen=True)
class Candidate:
    """A backup as retention sees it."""

    backup_id: str
    taken_at: datetime
    verified: bool = False


@dataclass(frozen=True)
class Selection:
    """The decision: ``keep`` maps a backup id to its reasons; ``delete`` lists the rest."""

    keep: dict[str, tuple[str, ...]] = field(default_factory=dict)
    delete: tuple[str, ...] = ()


def _periods(tz: tzinfo) -> list[tuple[str, Callable[[datetime], str]]]:
    def local(t: datetime) -> datetime:
        return t.astimezone(tz)

    def week(t: datetime) -> str:
        iso = local(t).isocalendar()
        return f"{iso.year}-W{iso.week:02d}"

    return [
        ("daily", lambda t: f"{local(t):%Y-%m-%d}"),
        ("weekly", week),
        ("monthly", lambda t: f"{local(t):%Y-%m}"),
        ("yearly", lambda t: f"{local(t):%Y}"),
    ]


def select(backups: Iterable[Candidate], retention: Retention, *, tz: tzinfo = UTC) -> Selection:
    """Split backups into kept (with reasons such as ``daily 2026-11-27``) and deleted.

    Deleted ids come oldest first. Ties in time are broken by backup id.
    """
    newest_first = sorted(backups, key=lambda b: (b.taken_at, b.backup_id), reverse=True)
    reasons: dict[str, list[str]] = {}
    for kind, period_of in _periods(tz):
        count = getattr(retention, kind)
        seen: set[str] = set()
        for b in newest_first:
            if len(seen) >= count:
                break
            period = period_of(b.taken_at)
            if period not in seen:
                seen.add(period)
                reasons.setdefault(b.backup_id, []).append(f"{kind} {period}")
    newest_verified = next((b for b in newest_first if b.verified), None)
    if newest_verified is not None:
        reasons.setdefault(newest_verified.backup_id, []).append("newest verified")
    keep = {
        b.backup_id: tuple(reasons[b.backup_id]) for b in newest_first if b.backup_id in reasons
    }
    delete = tuple(b.backup_id for b in reversed(newest_first) if b.backup_id not in reasons)
    return Selection(keep=keep, delete=delete)
