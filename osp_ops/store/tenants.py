"""Tenant records: phase, versions, platform (the spec itself lives in tenants/*.yaml)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from osp_ops.domain.errors import NotFoundError
from osp_ops.domain.names import ownership_mark
from osp_ops.domain.phases import Phase, check_transition
from osp_ops.store.db import Database, utcnow
from osp_ops.store.tables import TenantRow


@dataclass(frozen=True)
class TenantRecord:
    """What the state DB knows of a tenant."""

    slug: str
    phase: Phase
    reason: str | None
    app: str
    desired_version: str
    observed_version: str | None
    platform: str
    created_at: datetime
    updated_at: datetime

    @property
    def tenant_id(self) -> str:
        """Id of this tenant record (slug and creation time), written in the ownership
        mark of what platforms create for it: a later tenant of the same slug, created
        after this record was forgotten, does not adopt or drop it."""
        at = self.created_at
        at = at.astimezone(UTC) if at.tzinfo else at.replace(tzinfo=UTC)
        seed = f"{self.slug}\0{at.isoformat(timespec='microseconds')}"
        return hashlib.sha256(seed.encode()).hexdigest()[:16]

    def to_json(self) -> dict[str, Any]:
        """Plain data for --json output."""
        return {
            "slug": self.slug,
            "phase": str(self.phase),
            "reason": self.reason,
            "app": self.app,
            "desired_version": self.desired_version,
            "observed_version": self.observed_version,
            "platform": self.platform,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "owner_mark": ownership_mark(self.slug, self.tenant_id),
        }


def _record(r: TenantRow) -> TenantRecord:
    return TenantRecord(
        r.slug,
        Phase(r.phase),
        r.reason,
        r.app,
        r.desired_version,
        r.observed_version,
        r.platform,
        r.created_at,
        r.updated_at,
    )


class Tenants:
    """Tenant records and their phase changes."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, slug: str) -> TenantRecord | None:
        """The record, or None."""
        with self.db.transaction() as s:
            row = s.get(TenantRow, slug)
            return _record(row) if row else None

    def require(self, slug: str) -> TenantRecord:
        """The record; NotFoundError otherwise."""
        rec = self.get(slug)
        if rec is None:
            raise NotFoundError(f"no tenant {slug!r} (see `osp-ops tenant list`)")
        return rec

    def list(self) -> list[TenantRecord]:
        """All tenants by slug."""
        with self.db.transaction() as s:
            return [
                _record(r) for r in s.execute(select(TenantRow).order_by(TenantRow.slug)).scalars()
            ]

    def upsert(
        self, *, slug: str, app: str, desired_version: str, platform: str, spec_hash: str
    ) -> TenantRecord:
        """Create the record in phase requested, or update its desired state."""
        with self.db.transaction() as s:
            row = s.get(TenantRow, slug)
            now = utcnow()
            if row is None:
                row = TenantRow(
                    slug=slug,
                    phase=Phase.requested.value,
                    app=app,
                    desired_version=desired_version,
                    platform=platform,
                    spec_hash=spec_hash,
                    created_at=now,
                    updated_at=now,
                )
                s.add(row)
            else:
                row.app, row.desired_version, row.platform = app, desired_version, platform
                row.spec_hash, row.updated_at = spec_hash, now
            s.flush()
            return _record(row)

    def set_phase(
        self, slug: str, phase: Phase, reason: str | None = None, *, force: bool = False
    ) -> TenantRecord:
        """Move to ``phase``; IllegalTransitionError unless allowed (or ``force``)."""
        with self.db.transaction() as s:
            row = s.get(TenantRow, slug)
            if row is None:
                raise NotFoundError(f"no tenant {slug!r}")
            if not force:
                check_transition(slug, Phase(row.phase), phase)
            row.phase, row.reason, row.updated_at = phase.value, reason, utcnow()
            return _record(row)

    def set_observed_version(self, slug: str, version: str | None) -> None:
        """Record the version that actually runs."""
        with self.db.transaction() as s:
            row = s.get(TenantRow, slug)
            if row is not None:
                row.observed_version, row.updated_at = version, utcnow()

    def remove(self, slug: str) -> None:
        """Forget a tenant record entirely."""
        with self.db.transaction() as s:
            row = s.get(TenantRow, slug)
            if row is not None:
                s.delete(row)
