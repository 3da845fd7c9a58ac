"""Tables of the state DB. Changes here need an Alembic migration in migrations/versions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    """Declarative base of every table."""

    type_annotation_map = {dict[str, Any]: JSON, datetime: DateTime(timezone=True)}


class TenantRow(Base):
    """What osp-ops knows of a tenant: phase, versions, platform."""

    __tablename__ = "tenants"
    slug: Mapped[str] = mapped_column(String(63), primary_key=True)
    phase: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(Text)
    app: Mapped[str] = mapped_column(String(40))
    desired_version: Mapped[str] = mapped_column(String(40))
    observed_version: Mapped[str | None] = mapped_column(String(40))
    platform: Mapped[str] = mapped_column(String(20))
    spec_hash: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class OperationRow(Base):
    """One operation on a tenant: a kind and an ordered list of steps."""

    __tablename__ = "operations"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(63), index=True)
    kind: Mapped[str] = mapped_column(String(30))
    status: Mapped[str] = mapped_column(String(20), index=True)
    params: Mapped[dict[str, Any]]
    dedup_key: Mapped[str] = mapped_column(String(128), index=True)
    requested_by: Mapped[str] = mapped_column(String(120))
    worker: Mapped[str | None] = mapped_column(String(200))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class StepRow(Base):
    """One step of an operation, with its progress."""

    __tablename__ = "steps"
    operation_id: Mapped[str] = mapped_column(
        ForeignKey("operations.id", ondelete="CASCADE"), primary_key=True
    )
    idx: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(60))
    status: Mapped[str] = mapped_column(String(20))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    duration_ms: Mapped[float | None] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)
    output: Mapped[str | None] = mapped_column(Text)
    # Structured result (JSON object) that later steps read instead of parsing output.
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class OperationLogRow(Base):
    """Events reported while an operation ran (platform tasks, retries)."""

    __tablename__ = "operation_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    operation_id: Mapped[str] = mapped_column(
        ForeignKey("operations.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime]
    step: Mapped[str | None] = mapped_column(String(60))
    host: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20))
    message: Mapped[str] = mapped_column(Text)


class AuditRow(Base):
    """Append-only audit log; each row's hash covers the previous row's hash."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(120))
    tenant: Mapped[str | None] = mapped_column(String(63), index=True)
    action: Mapped[str] = mapped_column(String(60))
    details: Mapped[dict[str, Any]]
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHeadRow(Base):
    """The last audit row's id and hash, so deleting the tail is detected too."""

    __tablename__ = "audit_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_id: Mapped[int] = mapped_column(Integer)
    last_hash: Mapped[str] = mapped_column(String(64))
    # The first row chained with the audit key (rows before it predate migration 0004),
    # and the HMAC of (last_id, last_hash, mac_from) under that key.
    mac_from: Mapped[int | None] = mapped_column(Integer)
    mac: Mapped[str | None] = mapped_column(String(64))


class LeaseRow(Base):
    """One lease per tenant; ``token`` only grows (fencing)."""

    __tablename__ = "leases"
    tenant: Mapped[str] = mapped_column(String(63), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(200))
    token: Mapped[int] = mapped_column(Integer, default=0)
    expires_at: Mapped[float] = mapped_column(Float, default=0.0)


class SecretRow(Base):
    """An encrypted secret of a tenant (nonce + AES-GCM ciphertext)."""

    __tablename__ = "secrets"
    tenant: Mapped[str] = mapped_column(String(63), primary_key=True)
    name: Mapped[str] = mapped_column(String(60), primary_key=True)
    key_id: Mapped[str] = mapped_column(String(16))
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime]


class BackupRow(Base):
    """Cache of the backup catalog (the object store is the source of truth)."""

    __tablename__ = "backups"
    id: Mapped[str] = mapped_column(String(60), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(63), index=True)
    created_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(20))
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    verified_at: Mapped[datetime | None]  # the last verify that passed
    manifest: Mapped[dict[str, Any]]
    verify_result: Mapped[str | None] = mapped_column(String(20))  # passed | failed | damaged
    verify_problem: Mapped[str | None] = mapped_column(Text)
    verify_at: Mapped[datetime | None]


class DrillRow(Base):
    """A restore drill: which backup, how long it took, what it found."""

    __tablename__ = "drills"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(63), index=True)
    backup_id: Mapped[str] = mapped_column(String(60))
    started_at: Mapped[datetime]
    rto_seconds: Mapped[float | None] = mapped_column(Float)
    result: Mapped[str] = mapped_column(String(20))
    details: Mapped[dict[str, Any]]


class TaskRunRow(Base):
    """One run of an upgrade's one-time task: which hop, what command, how it ended."""

    __tablename__ = "task_runs"
    id: Mapped[str] = mapped_column(String(120), primary_key=True)  # <operation>/<to>/<n>
    tenant: Mapped[str] = mapped_column(String(63), index=True)
    operation_id: Mapped[str] = mapped_column(String(40), index=True)
    hop_from: Mapped[str] = mapped_column(String(40))
    hop_to: Mapped[str] = mapped_column(String(40))
    task_version: Mapped[str] = mapped_column(String(40))
    command: Mapped[str] = mapped_column(Text)
    rerunnable: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20))  # running | succeeded | failed
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    output: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]


class PortalRequestRow(Base):
    """A request made on the self-service portal, from the form to a ready instance.

    ``data`` holds the form (personal data included) until the request expires or is
    rejected; tokens are kept only as SHA-256 hashes."""

    __tablename__ = "requests"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    state: Mapped[str] = mapped_column(String(20), index=True)
    slug: Mapped[str] = mapped_column(String(63), index=True)
    email: Mapped[str | None] = mapped_column(String(254), index=True)
    ip: Mapped[str | None] = mapped_column(String(64))
    data: Mapped[dict[str, Any]]
    consent_version: Mapped[str] = mapped_column(String(40))
    confirm_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    access_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    confirmed_at: Mapped[datetime | None]
    decided_by: Mapped[str | None] = mapped_column(String(120))
    decided_at: Mapped[datetime | None]
    reason: Mapped[str | None] = mapped_column(Text)
    operation_id: Mapped[str | None] = mapped_column(String(40))


class PortalAdminRow(Base):
    """An ops-team account of the portal's admin pages (argon2 password hash)."""

    __tablename__ = "portal_admins"
    username: Mapped[str] = mapped_column(String(60), primary_key=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]


class PortalSessionRow(Base):
    """A signed-in admin's session; the cookie holds the token, this row its hash."""

    __tablename__ = "portal_sessions"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    username: Mapped[str] = mapped_column(
        ForeignKey("portal_admins.username", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
