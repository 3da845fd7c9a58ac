"""How values read on a terminal: sizes, counts, times, and ids given by a prefix.

- ``size(45_000)`` is ``43.9 KiB``: binary units, one decimal, never ``0.0 MB``;
- ``plural(1, "row")`` is ``1 row``, ``plural(2, "row")`` ``2 rows``;
- ``utc(t)`` is ``2026-12-01 09:31:20 UTC``: every time printed names its zone;
- ``match_id(prefix, known, what=...)`` finds the one id starting with ``prefix``
  (NotFoundError with close matches when none, AmbiguousError listing them when several);
- ``suggest(word, known)`` is the ``did you mean`` hint of an unknown slug or id.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from datetime import UTC, datetime

from osp_ops.domain.errors import AmbiguousError, NotFoundError

_UNITS = ("KiB", "MiB", "GiB", "TiB")


def size(n: float) -> str:
    """Bytes as a person reads them: ``512 B``, ``43.9 KiB``, ``1.2 GiB``."""
    if n < 1024:
        return f"{n:.0f} B"
    value = float(n)
    for unit in _UNITS:
        value /= 1024
        if value < 1024 or unit == _UNITS[-1]:
            return f"{value:.1f} {unit}"
    raise AssertionError("unreachable")


def rate(n: float, seconds: float) -> str:
    """A throughput: ``12.3 MiB/s``."""
    return f"{size(n / max(seconds, 1e-6))}/s"


def plural(n: int, word: str, words: str | None = None) -> str:
    """``1 row``, ``2 rows`` (``words``: an irregular plural)."""
    return f"{n} {word if n == 1 else (words or word + 's')}"


def utc(t: datetime | str | None) -> str:
    """A time in UTC, labelled: ``2026-12-01 09:31:20 UTC`` (naive times are UTC)."""
    if t is None:
        return "-"
    if isinstance(t, str):
        t = datetime.fromisoformat(t)
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def suggest(word: str, known: Iterable[str]) -> str | None:
    """``did you mean 'nanterre'?`` for a word one typo away from a known one, else None."""
    close = difflib.get_close_matches(word, sorted(set(known)), n=3, cutoff=0.6)
    if not close:
        return None
    return "did you mean " + " or ".join(repr(c) for c in close) + "?"


def match_id(prefix: str, known: Iterable[str], *, what: str, where: str = "") -> str:
    """The one id of ``known`` that is ``prefix`` or starts with it.

    NotFoundError (with a ``did you mean`` hint) when none does; AmbiguousError listing
    the candidates when several do. ``where`` completes the message (``of tenant 'nanterre'``).
    """
    ids = sorted(set(known))
    if prefix in ids:
        return prefix
    found = [i for i in ids if i.startswith(prefix)]
    if len(found) == 1:
        return found[0]
    suffix = f" {where}" if where else ""
    if found:
        shown = ", ".join(found[:10]) + (f" and {len(found) - 10} more" if len(found) > 10 else "")
        raise AmbiguousError(
            f"{what} {prefix!r}{suffix} is ambiguous: {shown}", hint="give more of the id"
        )
    raise NotFoundError(f"no {what} {prefix!r}{suffix}", hint=suggest(prefix, ids))
