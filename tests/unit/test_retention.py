"""Properties of the GFS retention selection (osp_ops.domain.retention)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from osp_ops.domain.retention import Candidate, select
from osp_ops.domain.spec import Retention

pytestmark = pytest.mark.unit

START = datetime(2024, 1, 1, tzinfo=UTC)


@st.composite
def candidates(draw: st.DrawFn) -> list[Candidate]:
    offsets = draw(st.lists(st.integers(0, 3 * 366 * 24), min_size=0, max_size=60, unique=True))
    return [
        Candidate(f"b{h:06d}", START + timedelta(hours=h), draw(st.booleans())) for h in offsets
    ]


retentions = (
    st.tuples(st.integers(0, 10), st.integers(0, 6), st.integers(0, 13), st.integers(0, 3))
    .filter(lambda c: sum(c) > 0)
    .map(lambda c: Retention(daily=c[0], weekly=c[1], monthly=c[2], yearly=c[3]))
)


@given(candidates(), retentions)
@settings(max_examples=300, deadline=None)
def test_partition_bound_and_newest_verified(backups: list[Candidate], r: Retention) -> None:
    sel = select(backups, r)
    ids = {b.backup_id for b in backups}
    assert set(sel.keep) | set(sel.delete) == ids
    assert not set(sel.keep) & set(sel.delete)
    assert len(sel.keep) <= r.daily + r.weekly + r.monthly + r.yearly + 1
    verified = [b for b in backups if b.verified]
    if verified:
        newest = max(verified, key=lambda b: b.taken_at)
        assert newest.backup_id in sel.keep
    if backups:  # the newest backup is the newest of its day, week, month and year
        newest_any = max(backups, key=lambda b: b.taken_at)
        assert newest_any.backup_id in sel.keep
    assert all(sel.keep[k] for k in sel.keep)


@given(candidates(), retentions)
@settings(max_examples=300, deadline=None)
def test_idempotent(backups: list[Candidate], r: Retention) -> None:
    first = select(backups, r)
    kept = [b for b in backups if b.backup_id in first.keep]
    again = select(kept, r)
    assert again.delete == ()
    assert set(again.keep) == set(first.keep)


@given(candidates(), st.integers(1, 10))
@settings(max_examples=200, deadline=None)
def test_daily_keeps_newest_of_each_recent_day(backups: list[Candidate], n: int) -> None:
    sel = select(backups, Retention(daily=n, weekly=0, monthly=0, yearly=0))
    by_day: dict[str, Candidate] = {}
    for b in sorted(backups, key=lambda b: b.taken_at):
        by_day[f"{b.taken_at:%Y-%m-%d}"] = b
    recent_days = sorted(by_day, reverse=True)[:n]
    assert {by_day[d].backup_id for d in recent_days} <= set(sel.keep)
    for d in recent_days:
        assert f"daily {d}" in sel.keep[by_day[d].backup_id]


def test_reasons_and_example() -> None:
    days = [START + timedelta(days=i, hours=2) for i in range(60)]
    backups = [Candidate(f"b{i:02d}", t, verified=i < 50) for i, t in enumerate(days)]
    sel = select(backups, Retention(daily=3, weekly=2, monthly=2, yearly=1))
    assert sel.keep["b59"] == (
        "daily 2024-02-29",
        "weekly 2024-W09",
        "monthly 2024-02",
        "yearly 2024",
    )
    assert sel.keep["b57"] == ("daily 2024-02-27",)
    assert sel.keep["b49"] == ("newest verified",)
    assert sel.keep["b30"] == ("monthly 2024-01",)
    assert "b00" in sel.delete and sel.delete == tuple(sorted(sel.delete))


def test_never_deletes_newest_verified_even_when_counts_skip_it() -> None:
    backups = [
        Candidate("old", START, verified=True),
        Candidate("new", START + timedelta(days=1), verified=False),
    ]
    sel = select(backups, Retention(daily=1, weekly=0, monthly=0, yearly=0))
    assert set(sel.keep) == {"old", "new"} and sel.delete == ()


def test_time_zone_decides_the_day() -> None:
    late = datetime(2026, 11, 27, 23, 30, tzinfo=UTC)  # 00:30 on the 28th in Paris
    backups = [Candidate("a", late - timedelta(hours=2)), Candidate("b", late)]
    utc = select(backups, Retention(daily=2, weekly=0, monthly=0, yearly=0))
    paris = select(
        backups, Retention(daily=2, weekly=0, monthly=0, yearly=0), tz=ZoneInfo("Europe/Paris")
    )
    assert utc.keep == {"b": ("daily 2026-11-27",)} and utc.delete == ("a",)
    assert set(paris.keep) == {"a", "b"}
