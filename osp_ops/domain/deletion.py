"""A deleted tenant's backups are kept, readable, until a date: how that date is written.

`tenant delete` moves the tenant to ``deleted`` with the reason ``backups kept until
<UTC time>``; `backup prune` destroys its backups and their key once that time has
passed. The reason is the record of the date (shown by `tenant list` and `tenant show`).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

# What delete keeps: the backup key (engine/backup_access.py IDENTITY_SECRET).
KEPT_SECRETS = ("backup_identity",)

_FORMAT = "%Y-%m-%d %H:%M UTC"
_PREFIX = "backups kept until "
_EXPIRY = re.compile(re.escape(_PREFIX) + r"(\d{4}-\d\d-\d\d \d\d:\d\d) UTC")


def expiry(deleted_at: datetime, days: float) -> datetime:
    """When the backups of a tenant deleted at ``deleted_at`` expire (to the minute,
    rounded up, so the date shown is never earlier than the one that applies)."""
    at = deleted_at.astimezone(UTC) + timedelta(days=days)
    if at.second or at.microsecond:
        at = at.replace(second=0, microsecond=0) + timedelta(minutes=1)
    return at


def deleted_reason(expires_at: datetime) -> str:
    """The reason of the ``deleted`` phase, naming the date."""
    return (
        f"{_PREFIX}{expires_at.astimezone(UTC):{_FORMAT}}; until then `osp-ops backup restore "
        "SLUG --to NEW` restores them, then `backup prune` destroys them and their key"
    )


def parse_expiry(reason: str | None) -> datetime | None:
    """The date in a ``deleted`` reason (None when it names none)."""
    m = _EXPIRY.search(reason or "")
    return datetime.strptime(m.group(1) + " UTC", _FORMAT).replace(tzinfo=UTC) if m else None


_PURGED = "backups and their key destroyed on "


def purged_reason(at: datetime) -> str:
    """The reason of the ``deleted`` phase once the purge has run."""
    return f"{_PURGED}{at.astimezone(UTC):{_FORMAT}} (their keeping time had passed)"


def is_purged(reason: str | None) -> bool:
    """Whether the purge has run."""
    return (reason or "").startswith(_PURGED)
