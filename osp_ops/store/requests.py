"""Portal requests, admin accounts and admin sessions in the state DB.

A request moves through::

    unconfirmed ──(email link clicked)──> pending ──(approved)──> approved
        │                                    │                       │
        └─(24 h)─> expired                   └─(rejected)─> rejected └─> provisioning ─> ready
                                                                                    └─> failed

Tokens (the confirmation link, the client space's private link, admin sessions) are
random, sent once, and kept only as SHA-256 hashes. The confirmation token is consumed
by one conditional UPDATE, so two clicks racing confirm once. An unconfirmed request
that expires loses its personal data (email, IP, contact person); only the
municipality, the address asked for and the dates stay, for the abuse statistics.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import delete, func, select, update

from osp_ops.domain.errors import IllegalTransitionError, NotFoundError
from osp_ops.store.db import Database, utcnow
from osp_ops.store.tables import PortalAdminRow, PortalRequestRow, PortalSessionRow

CONFIRM_TTL = timedelta(hours=24)
SESSION_TTL = timedelta(hours=8)
# The form fields that are personal data, deleted when a request expires or is rejected.
PERSONAL_FIELDS = ("contact_name", "contact_role", "contact_email", "contact_phone")


class RequestState(StrEnum):
    """Where a portal request stands."""

    unconfirmed = "unconfirmed"  # waiting for the click on the emailed link
    pending = "pending"  # confirmed, waiting for the ops team's approval
    approved = "approved"  # spec written, creation queued
    provisioning = "provisioning"  # the worker is creating the instance
    ready = "ready"
    failed = "failed"  # the creation failed; the ops team retries it
    rejected = "rejected"
    expired = "expired"


# Which state may follow which; anything else raises IllegalTransitionError.
MOVES: dict[RequestState, frozenset[RequestState]] = {
    RequestState.unconfirmed: frozenset({RequestState.pending, RequestState.expired}),
    RequestState.pending: frozenset({RequestState.approved, RequestState.rejected}),
    RequestState.approved: frozenset(
        {RequestState.provisioning, RequestState.ready, RequestState.failed}
    ),
    RequestState.provisioning: frozenset({RequestState.ready, RequestState.failed}),
    RequestState.failed: frozenset({RequestState.provisioning, RequestState.ready}),
    RequestState.ready: frozenset(),
    RequestState.rejected: frozenset(),
    RequestState.expired: frozenset(),
}
# States in which a request still holds its slug and counts against its email's limit.
ACTIVE = frozenset(
    {
        RequestState.unconfirmed,
        RequestState.pending,
        RequestState.approved,
        RequestState.provisioning,
        RequestState.failed,
    }
)


def token_hash(token: str) -> str:
    """SHA-256 (hex) of a token: what the state DB keeps instead of the token."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def new_token() -> str:
    """A fresh random token (32 bytes, URL-safe: 43 characters)."""
    return secrets.token_urlsafe(32)


def _aware(at: datetime | None) -> datetime | None:
    if at is None:
        return None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


@dataclass(frozen=True)
class PortalRequest:
    """One portal request as the state DB holds it."""

    id: str
    state: RequestState
    slug: str
    email: str | None
    ip: str | None
    data: dict[str, Any]
    consent_version: str
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None
    confirmed_at: datetime | None
    decided_by: str | None
    decided_at: datetime | None
    reason: str | None
    operation_id: str | None

    def to_json(self, *, personal: bool = True) -> dict[str, Any]:
        """Plain data for --json output and the API (``personal=False`` leaves out the
        contact person, email and IP)."""
        data = dict(self.data)
        if not personal:
            for name in PERSONAL_FIELDS:
                data.pop(name, None)
        out: dict[str, Any] = {
            "id": self.id,
            "state": str(self.state),
            "slug": self.slug,
            "data": data,
            "consent_version": self.consent_version,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "confirmed_at": self.confirmed_at.isoformat() if self.confirmed_at else None,
            "decided_by": self.decided_by,
            "decided_at": self.decided_at.isoformat() if self.decided_at else None,
            "reason": self.reason,
            "operation_id": self.operation_id,
        }
        if personal:
            out["email"], out["ip"] = self.email, self.ip
        return out


def _record(r: PortalRequestRow) -> PortalRequest:
    return PortalRequest(
        id=r.id,
        state=RequestState(r.state),
        slug=r.slug,
        email=r.email,
        ip=r.ip,
        data=dict(r.data),
        consent_version=r.consent_version,
        created_at=_aware(r.created_at) or r.created_at,
        updated_at=_aware(r.updated_at) or r.updated_at,
        expires_at=_aware(r.expires_at),
        confirmed_at=_aware(r.confirmed_at),
        decided_by=r.decided_by,
        decided_at=_aware(r.decided_at),
        reason=r.reason,
        operation_id=r.operation_id,
    )


class RequestStore:
    """Portal requests: create, confirm once, decide, follow, expire."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def create(
        self,
        *,
        slug: str,
        email: str,
        ip: str | None,
        data: dict[str, Any],
        consent_version: str,
        now: datetime | None = None,
    ) -> tuple[PortalRequest, str, str]:
        """Record an unconfirmed request; returns it, the confirmation token and the
        client space's access token (both only as hashes in the DB)."""
        now = now or utcnow()
        confirm, access = new_token(), new_token()
        row = PortalRequestRow(
            id=secrets.token_hex(8),
            state=RequestState.unconfirmed.value,
            slug=slug,
            email=email,
            ip=ip,
            data=data,
            consent_version=consent_version,
            confirm_hash=token_hash(confirm),
            access_hash=token_hash(access),
            created_at=now,
            updated_at=now,
            expires_at=now + CONFIRM_TTL,
        )
        with self.db.transaction() as s:
            s.add(row)
        return _record(row), confirm, access

    def confirm(self, token: str, *, now: datetime | None = None) -> PortalRequest | None:
        """Consume a confirmation token: the request becomes pending. None when the token
        is unknown, already used or expired (one conditional UPDATE: single use)."""
        now = now or utcnow()
        h = token_hash(token)
        with self.db.transaction() as s:
            rid = s.scalar(select(PortalRequestRow.id).where(PortalRequestRow.confirm_hash == h))
            if rid is None:
                return None
            done = s.execute(
                update(PortalRequestRow)
                .where(
                    PortalRequestRow.id == rid,
                    PortalRequestRow.confirm_hash == h,
                    PortalRequestRow.state == RequestState.unconfirmed.value,
                    PortalRequestRow.expires_at > now,
                )
                .values(
                    state=RequestState.pending.value,
                    confirm_hash=None,
                    confirmed_at=now,
                    updated_at=now,
                    expires_at=None,
                )
            )
            if done.rowcount != 1:  # type: ignore[attr-defined]
                return None
            row = s.get(PortalRequestRow, rid)
            assert row is not None
            s.refresh(row)
            return _record(row)

    def confirmable(self, token: str, *, now: datetime | None = None) -> bool:
        """True when ``token`` would confirm a request now (nothing is changed)."""
        now = now or utcnow()
        with self.db.transaction() as s:
            found = s.scalar(
                select(PortalRequestRow.id).where(
                    PortalRequestRow.confirm_hash == token_hash(token),
                    PortalRequestRow.state == RequestState.unconfirmed.value,
                    PortalRequestRow.expires_at > now,
                )
            )
            return found is not None

    def get(self, request_id: str) -> PortalRequest | None:
        """A request by id, or None."""
        with self.db.transaction() as s:
            row = s.get(PortalRequestRow, request_id)
            return _record(row) if row else None

    def require(self, request_id: str) -> PortalRequest:
        """A request by id (NotFoundError naming it)."""
        found = self.get(request_id)
        if found is None:
            raise NotFoundError(f"no portal request {request_id!r}")
        return found

    def by_access(self, token: str) -> PortalRequest | None:
        """The request whose client-space token this is, or None."""
        with self.db.transaction() as s:
            row = s.scalar(
                select(PortalRequestRow).where(PortalRequestRow.access_hash == token_hash(token))
            )
            return _record(row) if row else None

    def recent(self, *, state: RequestState | None = None) -> list[PortalRequest]:
        """Requests, newest first (only those in ``state`` when given)."""
        with self.db.transaction() as s:
            q = select(PortalRequestRow).order_by(PortalRequestRow.created_at.desc())
            if state is not None:
                q = q.where(PortalRequestRow.state == state.value)
            return [_record(r) for r in s.scalars(q).all()]

    def active_for_slug(self, slug: str) -> PortalRequest | None:
        """An active request (not rejected, expired or ready) holding ``slug``."""
        with self.db.transaction() as s:
            row = s.scalar(
                select(PortalRequestRow).where(
                    PortalRequestRow.slug == slug,
                    PortalRequestRow.state.in_([a.value for a in ACTIVE]),
                )
            )
            return _record(row) if row else None

    def count_since(self, *, email: str, since: datetime) -> int:
        """How many requests ``email`` made since ``since`` (for the per-email limit)."""
        with self.db.transaction() as s:
            n = s.scalar(
                select(func.count())
                .select_from(PortalRequestRow)
                .where(PortalRequestRow.email == email, PortalRequestRow.created_at >= since)
            )
            return int(n or 0)

    def move(
        self,
        request_id: str,
        to: RequestState,
        *,
        by: str | None = None,
        reason: str | None = None,
        operation_id: str | None = None,
        expect: RequestState | None = None,
        now: datetime | None = None,
    ) -> PortalRequest:
        """Move a request to ``to`` (checked against ``MOVES``, and against ``expect``
        when given, under the row's lock); a rejection deletes the personal data."""
        now = now or utcnow()
        with self.db.transaction() as s:
            row = s.execute(
                select(PortalRequestRow).where(PortalRequestRow.id == request_id).with_for_update()
            ).scalar_one_or_none()
            if row is None:
                raise NotFoundError(f"no portal request {request_id!r}")
            current = RequestState(row.state)
            if (expect is not None and current != expect) or to not in MOVES[current]:
                raise IllegalTransitionError(
                    f"portal request {request_id} is {current}; it cannot become {to}"
                )
            row.state, row.updated_at = to.value, now
            if by is not None:
                row.decided_by, row.decided_at = by, now
            if reason is not None:
                row.reason = reason
            if operation_id is not None:
                row.operation_id = operation_id
            return _record(row)

    def set_operation(self, request_id: str, operation_id: str) -> PortalRequest:
        """Record the creation queued for an approved request."""
        with self.db.transaction() as s:
            row = s.get(PortalRequestRow, request_id)
            if row is None:
                raise NotFoundError(f"no portal request {request_id!r}")
            row.operation_id, row.updated_at = operation_id, utcnow()
            return _record(row)

    def discard(self, request_id: str) -> None:
        """Expire one unconfirmed request now (its mail could not be sent)."""
        with self.db.transaction() as s:
            row = s.get(PortalRequestRow, request_id)
            if row is not None and row.state == RequestState.unconfirmed.value:
                _expire(row, utcnow())

    def forget_personal(self, request_id: str) -> None:
        """Delete a request's personal data (after the rejection mail went out)."""
        with self.db.transaction() as s:
            row = s.get(PortalRequestRow, request_id)
            if row is not None:
                _forget_personal(row)

    def expire(self, *, now: datetime | None = None) -> list[str]:
        """Expire unconfirmed requests past their deadline and delete their personal
        data; returns their ids."""
        now = now or utcnow()
        with self.db.transaction() as s:
            rows = s.scalars(
                select(PortalRequestRow)
                .where(
                    PortalRequestRow.state == RequestState.unconfirmed.value,
                    PortalRequestRow.expires_at <= now,
                )
                .with_for_update()
            ).all()
            for row in rows:
                _expire(row, now)
            return [r.id for r in rows]


def _forget_personal(row: PortalRequestRow) -> None:
    """Delete a request's personal data: the contact person, the email, the IP."""
    row.data = {k: v for k, v in row.data.items() if k not in PERSONAL_FIELDS}
    row.email, row.ip = None, None


def _expire(row: PortalRequestRow, now: datetime) -> None:
    """An unconfirmed request expired: its link no longer confirms, its personal data
    is deleted."""
    row.state, row.updated_at = RequestState.expired.value, now
    row.confirm_hash = None
    _forget_personal(row)


@dataclass(frozen=True)
class Admin:
    """An ops-team account of the portal."""

    username: str
    created_at: datetime


class AdminStore:
    """Admin accounts (password hashes made by the caller) and their sessions."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def put(self, username: str, password_hash: str) -> bool:
        """Create an account, or set its password hash; True when it was created."""
        with self.db.transaction() as s:
            row = s.get(PortalAdminRow, username)
            if row is None:
                s.add(
                    PortalAdminRow(
                        username=username, password_hash=password_hash, created_at=utcnow()
                    )
                )
                return True
            row.password_hash = password_hash
            s.execute(delete(PortalSessionRow).where(PortalSessionRow.username == username))
            return False

    def password_hash(self, username: str) -> str | None:
        """The stored hash of ``username``'s password, or None."""
        with self.db.transaction() as s:
            row = s.get(PortalAdminRow, username)
            return row.password_hash if row else None

    def accounts(self) -> list[Admin]:
        """Every account, by name."""
        with self.db.transaction() as s:
            rows = s.scalars(select(PortalAdminRow).order_by(PortalAdminRow.username)).all()
            return [Admin(r.username, _aware(r.created_at) or r.created_at) for r in rows]

    def remove(self, username: str) -> bool:
        """Delete an account and its sessions; True when it existed."""
        with self.db.transaction() as s:
            s.execute(delete(PortalSessionRow).where(PortalSessionRow.username == username))
            n = s.execute(delete(PortalAdminRow).where(PortalAdminRow.username == username))
            return bool(n.rowcount)  # type: ignore[attr-defined]

    def open_session(self, username: str, *, now: datetime | None = None) -> str:
        """A new session token for ``username`` (its hash is stored)."""
        now = now or utcnow()
        token = new_token()
        with self.db.transaction() as s:
            s.execute(delete(PortalSessionRow).where(PortalSessionRow.expires_at <= now))
            s.add(
                PortalSessionRow(
                    token_hash=token_hash(token),
                    username=username,
                    created_at=now,
                    expires_at=now + SESSION_TTL,
                )
            )
        return token

    def session_user(self, token: str, *, now: datetime | None = None) -> str | None:
        """Who holds the session ``token``, or None when unknown or expired."""
        now = now or utcnow()
        with self.db.transaction() as s:
            row = s.get(PortalSessionRow, token_hash(token))
            if row is None or (_aware(row.expires_at) or now) <= now:
                return None
            return row.username

    def close_session(self, token: str) -> None:
        """Sign out: forget the session."""
        with self.db.transaction() as s:
            s.execute(
                delete(PortalSessionRow).where(PortalSessionRow.token_hash == token_hash(token))
            )
