"""One lease per tenant: a TTL, a heartbeat and a fencing token.

Acquire and renew are single compare-and-set UPDATEs, safe on SQLite and PostgreSQL.
The token grows by one on every acquisition, so a holder that lost its lease (and a
newer holder got it) is refused when it renews or releases.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from osp_ops.domain.errors import LeaseHeldError, TemporaryError
from osp_ops.procinfo import start_time
from osp_ops.store.db import Database
from osp_ops.store.tables import LeaseRow


@dataclass(frozen=True)
class Lease:
    """A held lease."""

    tenant: str
    holder: str
    token: int
    expires_at: float


def holder_id(label: str) -> str:
    """Identity of this process as a lease holder: ``label@host:pid:start``."""
    pid = os.getpid()
    return f"{label}@{socket.gethostname()}:{pid}:{start_time(pid) or 0}"


def holder_is_dead(holder: str) -> bool:
    """True when ``holder`` is a process of this host that no longer exists.

    A holder on another host is never declared dead here: its lease expires by TTL.
    """
    try:
        _label, rest = holder.rsplit("@", 1)
        host, pid, start = rest.split(":")
    except ValueError:
        return False
    if host != socket.gethostname():
        return False
    return start_time(int(pid)) != start


class Leases:
    """Lease operations on the state DB."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def _ensure_row(self, tenant: str) -> None:
        insert = pg_insert if self.db.is_postgresql else sqlite_insert
        with self.db.transaction() as s:
            s.execute(
                insert(LeaseRow)
                .values(tenant=tenant, holder=None, token=0, expires_at=0.0)
                .on_conflict_do_nothing(index_elements=["tenant"])
            )

    def acquire(self, tenant: str, holder: str, ttl: float) -> Lease:
        """Take the tenant's lease or raise LeaseHeldError naming the holder.

        A lease is free when released, expired, or held by a dead local process.
        """
        self._ensure_row(tenant)
        now = time.time()
        with self.db.transaction() as s:
            row = s.execute(select(LeaseRow).where(LeaseRow.tenant == tenant)).scalar_one()
            current = (row.holder, row.token, row.expires_at)
        free = (
            current[0] is None
            or current[2] <= now
            or current[0] == holder
            or holder_is_dead(current[0])
        )
        if not free:
            raise LeaseHeldError(tenant, str(current[0]), current[2] - now)
        new_token = current[1] + 1
        expires = now + ttl
        with self.db.transaction() as s:
            result = s.execute(
                update(LeaseRow)
                .where(LeaseRow.tenant == tenant, LeaseRow.token == current[1])
                .values(holder=holder, token=new_token, expires_at=expires)
            )
            won = result.rowcount == 1  # type: ignore[attr-defined]
        if not won:
            # Someone else took it between our read and our write.
            with self.db.transaction() as s:
                row = s.execute(select(LeaseRow).where(LeaseRow.tenant == tenant)).scalar_one()
                raise LeaseHeldError(tenant, str(row.holder), row.expires_at - time.time())
        return Lease(tenant, holder, new_token, expires)

    def renew(self, lease: Lease, ttl: float) -> Lease:
        """Extend a held lease; TemporaryError if it was lost (fenced out)."""
        expires = time.time() + ttl
        with self.db.transaction() as s:
            result = s.execute(
                update(LeaseRow)
                .where(
                    LeaseRow.tenant == lease.tenant,
                    LeaseRow.token == lease.token,
                    LeaseRow.holder == lease.holder,
                )
                .values(expires_at=expires)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                raise TemporaryError(f"lease of {lease.tenant!r} was lost (token {lease.token})")
        return Lease(lease.tenant, lease.holder, lease.token, expires)

    def release(self, lease: Lease) -> None:
        """Give the lease back (no-op if it was already taken over)."""
        with self.db.transaction() as s:
            s.execute(
                update(LeaseRow)
                .where(LeaseRow.tenant == lease.tenant, LeaseRow.token == lease.token)
                .values(holder=None, expires_at=0.0)
            )

    def holder(self, tenant: str) -> tuple[str | None, float]:
        """Who holds the tenant's lease now, and until when (epoch seconds)."""
        with self.db.transaction() as s:
            row = s.get(LeaseRow, tenant)
            if row is None or row.holder is None or row.expires_at <= time.time():
                return None, 0.0
            return row.holder, row.expires_at
