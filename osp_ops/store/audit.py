"""The append-only audit log, chained with a key the state DB does not hold.

Each row's ``hash`` is an HMAC-SHA-256, under the audit key (``AuditKey``: derived from
the master key file, kept beside it), over the previous row's hash and the row's
canonical JSON; ``audit_head`` keeps the last id and hash and is itself MACed, so
editing, deleting or appending behind osp-ops' back, or rewriting the whole chain
without the key (a plain SHA-256 recomputation), is detected by ``verify``. Rows
written before migration 0004 (ids below ``mac_from``) keep their SHA-256 links; the
first keyed row links to them.

A wiped or truncated log (rows and head deleted together) is caught by the anchors:
the head, MACed, written to the backup store (``AnchorStore``, under object lock where
the store has it) every ``anchor_every`` rows and at every verify that passes; verify
checks the chain against the latest anchor.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from osp_ops.domain.errors import OspOpsError
from osp_ops.store.db import Database, utcnow
from osp_ops.store.secrets import MasterKey, write_key_file
from osp_ops.store.tables import AuditHeadRow, AuditRow

GENESIS = "0" * 64
log = logging.getLogger("osp_ops.audit")


class AuditKey:
    """The key of the audit chain: HKDF-SHA256 of the master key the first time it is
    needed, then kept in its own file (mode 0600) beside the master key, so a master key
    rotation does not change it. Never in the state DB."""

    INFO = b"osp-ops audit chain v1"

    def __init__(self, master: MasterKey, path: Path | None = None) -> None:
        self.master = master
        self.path = path or master.path.with_name("audit.key")
        self._key: bytes | None = None

    def get(self) -> bytes:
        """The 32-byte key (created on first use; racing creators agree on one file)."""
        if self._key is None:
            if not self.path.exists():
                _, master = self.master.current()
                key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=self.INFO).derive(
                    master
                )
                tmp = self.path.with_name(
                    f".{self.path.name}.{os.getpid()}.{threading.get_ident()}.tmp"
                )
                write_key_file(tmp, key)
                try:
                    os.link(tmp, self.path)  # complete when it appears; the first one wins
                except FileExistsError:
                    pass
                finally:
                    tmp.unlink(missing_ok=True)
            key = self.path.read_bytes()
            if len(key) != 32:
                raise OspOpsError(f"audit key file {self.path} is not a 32-byte key")
            self._key = key
        return self._key


class AnchorStore(Protocol):
    """Where anchors go: outside the state DB (the backup store, engine/audit_anchors.py)."""

    def write(self, name: str, data: bytes) -> None:
        """Store one anchor object (names sort by the row id they anchor)."""

    def latest(self) -> tuple[str, bytes] | None:
        """The anchor with the greatest name, or None."""


def _mac(key: bytes, text: str) -> str:
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def _head_mac(key: bytes, last_id: int, last_hash: str, mac_from: int) -> str:
    return _mac(key, f"audit head|{last_id}|{last_hash}|{mac_from}")


def _body(
    prev: str,
    id_: int,
    at: datetime,
    actor: str,
    tenant: str | None,
    action: str,
    details: dict[str, Any],
) -> str:
    body = json.dumps(
        {
            "id": id_,
            "at": at.isoformat(),
            "actor": actor,
            "tenant": tenant,
            "action": action,
            "details": details,
        },
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return prev + body


def _row_hash(key: bytes | None, prev: str, *fields: Any) -> str:
    """HMAC under the audit key; plain SHA-256 for rows from before keyed chains."""
    text = _body(prev, *fields)
    return _mac(key, text) if key is not None else hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class AuditEntry:
    """One audit row."""

    id: int
    at: datetime
    actor: str
    tenant: str | None
    action: str
    details: dict[str, Any]


@dataclass(frozen=True)
class AuditReport:
    """Result of verifying the chain."""

    ok: bool
    rows: int
    problems: list[str]
    anchor: str | None = None  # the anchor the chain was checked against
    anchored: str | None = None  # the anchor this verify wrote
    notes: list[str] = field(default_factory=list)


class AuditLog:
    """Append and verify audit entries."""

    def __init__(
        self,
        db: Database,
        key: AuditKey,
        *,
        anchors: AnchorStore | None = None,
        anchor_every: int = 20,
    ) -> None:
        self.db = db
        self.key = key
        self.anchors = anchors
        self.anchor_every = anchor_every

    def append(
        self,
        *,
        actor: str,
        action: str,
        tenant: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> AuditEntry:
        """Append one entry (serialized with the head row's lock)."""
        details = details or {}
        key = self.key.get()
        insert = pg_insert if self.db.is_postgresql else sqlite_insert
        with self.db.transaction() as s:
            # The head row must exist before it is locked: two first appends racing to
            # create it would otherwise collide on its primary key.
            s.execute(
                insert(AuditHeadRow)
                .values(id=1, last_id=0, last_hash=GENESIS, mac_from=1)
                .on_conflict_do_nothing(index_elements=["id"])
            )
            head = s.execute(
                select(AuditHeadRow).where(AuditHeadRow.id == 1).with_for_update()
            ).scalar_one()
            first_seal = head.mac is None  # a new log, or the first append after 0004
            mac_from = head.mac_from or head.last_id + 1
            at = utcnow()
            new_id = head.last_id + 1
            h = _row_hash(key, head.last_hash, new_id, _normal(at), actor, tenant, action, details)
            s.add(
                AuditRow(
                    id=new_id,
                    at=at,
                    actor=actor,
                    tenant=tenant,
                    action=action,
                    details=details,
                    prev_hash=head.last_hash,
                    hash=h,
                )
            )
            head.last_id, head.last_hash, head.mac_from = new_id, h, mac_from
            head.mac = _head_mac(key, new_id, h, mac_from)
        if self.anchors is not None and (first_seal or new_id % self.anchor_every == 0):
            try:
                self.anchor()
            except (OspOpsError, OSError) as e:  # the next one, or the next verify, anchors
                log.warning("audit anchor not written", extra={"error": str(e)})
        return AuditEntry(new_id, at, actor, tenant, action, details)

    def _head(self) -> tuple[int, str, int]:
        """(last id, last hash, first keyed row) of the head."""
        with self.db.transaction() as s:
            head = s.get(AuditHeadRow, 1)
            if head is None:
                return 0, GENESIS, 1
            return head.last_id, head.last_hash, head.mac_from or head.last_id + 1

    def anchor(self) -> str:
        """Write the head, MACed, to the anchor store; the anchor's name."""
        if self.anchors is None:
            raise OspOpsError("no anchor store for the audit log")
        last_id, last_hash, mac_from = self._head()
        at = datetime.now(UTC)
        payload = {"v": 1, "last_id": last_id, "last_hash": last_hash, "mac_from": mac_from,
                   "at": at.isoformat()}  # fmt: skip
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        name = f"{last_id:012d}-{at:%Y%m%dT%H%M%S%fZ}.json"
        data = json.dumps({"body": payload, "mac": _mac(self.key.get(), "anchor|" + text)})
        self.anchors.write(name, data.encode())
        return name

    def _check_anchor(
        self, key: bytes, hashes_by_id: dict[int, str], last_id: int, mac_from: int
    ) -> tuple[str | None, list[str]]:
        """(the latest anchor's name, problems of the chain against it)."""
        assert self.anchors is not None
        try:
            latest = self.anchors.latest()
        except (OspOpsError, OSError) as e:
            return None, [f"cannot read the audit anchors: {e}"]
        if latest is None:
            return None, []
        name, data = latest
        try:
            doc = json.loads(data)
            body = doc["body"]
            text = json.dumps(body, sort_keys=True, separators=(",", ":"))
            valid = hmac.compare_digest(str(doc["mac"]), _mac(key, "anchor|" + text))
            a_id, a_hash, a_from = (
                int(body["last_id"]),
                str(body["last_hash"]),
                int(body["mac_from"]),
            )
        except (ValueError, KeyError, TypeError):
            return name, [f"anchor {name} does not parse"]
        if not valid:
            return name, [f"anchor {name} fails its MAC (not written with the audit key)"]
        problems = []
        if a_id > last_id:
            problems.append(
                f"the log ends at row {last_id} but anchor {name} recorded row {a_id}: "
                "rows were deleted (a truncated or wiped log)"
            )
        elif a_id and hashes_by_id.get(a_id) != a_hash:
            problems.append(f"row {a_id} is not the one anchor {name} recorded (rewritten)")
        if mac_from > a_from:
            problems.append(
                f"keyed rows start at {mac_from} but anchor {name} recorded {a_from} (rewritten)"
            )
        return name, problems

    def entries(self, *, tenant: str | None = None, limit: int = 100) -> list[AuditEntry]:
        """The newest entries, newest first."""
        with self.db.transaction() as s:
            q = select(AuditRow).order_by(AuditRow.id.desc()).limit(limit)
            if tenant:
                q = q.where(AuditRow.tenant == tenant)
            return [
                AuditEntry(r.id, r.at, r.actor, r.tenant, r.action, r.details)
                for r in s.execute(q).scalars()
            ]

    def verify(self, *, anchor: bool = True) -> AuditReport:
        """Walk the chain with the audit key, then check it against the latest anchor;
        report every broken link, edited row, gap, missing tail or rewrite. When it
        passes, a new anchor of the head is written (unless ``anchor`` is False)."""
        key = self.key.get()
        problems: list[str] = []
        prev_hash, prev_id, count = GENESIS, 0, 0
        hashes_by_id: dict[int, str] = {}
        with self.db.transaction() as s:
            head = s.get(AuditHeadRow, 1)
            mac_from = (head.mac_from or head.last_id + 1) if head is not None else 1
            for r in s.execute(select(AuditRow).order_by(AuditRow.id)).scalars():
                count += 1
                if r.id != prev_id + 1:
                    problems.append(f"rows {prev_id + 1}..{r.id - 1} are missing")
                if r.prev_hash != prev_hash:
                    problems.append(f"row {r.id}: link to the previous row is broken")
                expected = _row_hash(
                    key if r.id >= mac_from else None,
                    r.prev_hash, r.id, _normal(r.at), r.actor, r.tenant, r.action, r.details,
                )  # fmt: skip
                if not hmac.compare_digest(expected, r.hash):
                    problems.append(
                        f"row {r.id}: content does not match its MAC (edited, or the chain "
                        "was recomputed without the audit key)"
                    )
                prev_hash, prev_id = r.hash, r.id
                hashes_by_id[r.id] = r.hash
        if head is not None and (head.last_id != prev_id or head.last_hash != prev_hash):
            problems.append(
                f"the log ends at row {prev_id} but {head.last_id} rows were written "
                "(rows deleted from the end, or the head was edited)"
            )
        if head is None and count:
            problems.append("the audit head is missing")
        if head is not None and head.mac is not None:
            if not hmac.compare_digest(
                head.mac, _head_mac(key, head.last_id, head.last_hash, mac_from)
            ):
                problems.append("the audit head fails its MAC (edited)")
        elif head is not None and mac_from <= head.last_id:
            problems.append("the audit head is not sealed although keyed rows exist (edited)")
        name: str | None = None
        notes: list[str] = []
        if self.anchors is not None:
            name, anchor_problems = self._check_anchor(key, hashes_by_id, prev_id, mac_from)
            problems += anchor_problems
            if name is None and not anchor_problems:
                notes.append("no anchor yet: this verify writes the first")
        anchored = None
        if not problems and anchor and self.anchors is not None:
            anchored = self.anchor()
        return AuditReport(
            ok=not problems, rows=count, problems=problems, anchor=name, anchored=anchored,
            notes=notes,
        )  # fmt: skip


def _normal(at: datetime) -> datetime:
    """A timestamp as naive UTC, as SQLite gives it back (PostgreSQL gives it aware)."""
    if at.tzinfo is not None:
        at = at.astimezone(UTC)
    return at.replace(tzinfo=None)
