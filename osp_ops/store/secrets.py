"""Tenant secrets, encrypted at rest with AES-256-GCM under a master key file.

The key file (32 random bytes, mode 0600) is created on first use. Each ciphertext
records the id of the key that sealed it, and its tenant and name are authenticated
data, so a ciphertext copied onto another secret does not decrypt. Values are never
logged: callers get them as plain ``str`` and must keep them out of logs and argv.
"""

from __future__ import annotations

import hashlib
import os
import secrets as pysecrets
import threading
from collections.abc import Callable, Collection
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import delete, select

from osp_ops.domain import redaction
from osp_ops.domain.errors import NotFoundError, SecretError
from osp_ops.store.db import Database, utcnow
from osp_ops.store.tables import SecretRow


def _key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:16]


def write_key_file(path: Path, key: bytes) -> None:
    """Write a key file (mode 0600, fsynced), creating its directory (0700)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, key)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(path, 0o600)


class MasterKey:
    """The master key file, with its pending successor during a rotation."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.pending = path.with_name(path.name + ".new")

    def load(self) -> dict[str, bytes]:
        """Known keys by id, creating the key file on first use."""
        if not self.path.exists():  # racing creators agree on the first complete file
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{threading.get_ident()}")
            write_key_file(tmp, AESGCM.generate_key(bit_length=256))
            try:
                os.link(tmp, self.path)
            except FileExistsError:
                pass
            finally:
                tmp.unlink(missing_ok=True)
        keys = {}
        for p in (self.path, self.pending):
            if p.exists():
                key = p.read_bytes()
                if len(key) != 32:
                    raise SecretError(f"master key file {p} is not a 32-byte key")
                keys[_key_id(key)] = key
        return keys

    def promote(self) -> None:
        """Make the pending key the master key (the last step of a rotation)."""
        os.replace(self.pending, self.path)

    def current(self) -> tuple[str, bytes]:
        """The key new secrets are sealed with."""
        key = self.load()
        current = self.path.read_bytes()
        return _key_id(current), key[_key_id(current)]


def _aad(tenant: str, name: str) -> bytes:
    return f"osp-ops/{tenant}/{name}".encode()


class SecretStore:
    """Encrypted secrets per tenant."""

    def __init__(self, db: Database, key: MasterKey) -> None:
        self.db = db
        self.key = key

    def _seal(self, tenant: str, name: str, value: str) -> tuple[str, bytes]:
        key_id, key = self.key.current()
        nonce = os.urandom(12)
        return key_id, nonce + AESGCM(key).encrypt(nonce, value.encode(), _aad(tenant, name))

    def _open(self, row: SecretRow, keys: dict[str, bytes]) -> str:
        key = keys.get(row.key_id)
        if key is None:
            raise SecretError(
                f"secret {row.name!r} of {row.tenant!r} was sealed with key {row.key_id}, "
                "which is not the configured master key"
            )
        try:
            plain = AESGCM(key).decrypt(
                row.ciphertext[:12], row.ciphertext[12:], _aad(row.tenant, row.name)
            )
        except InvalidTag:
            raise SecretError(
                f"secret {row.name!r} of {row.tenant!r} fails authentication"
            ) from None
        value = plain.decode()
        redaction.register(value)
        return value

    def ensure(self, tenant: str, name: str, generate: Callable[[], str]) -> bool:
        """Create the secret if missing (generated once); True when it was created."""
        with self.db.transaction() as s:
            if s.get(SecretRow, (tenant, name)) is not None:
                return False
            key_id, blob = self._seal(tenant, name, generate())
            s.add(
                SecretRow(
                    tenant=tenant, name=name, key_id=key_id, ciphertext=blob, created_at=utcnow()
                )
            )
        return True

    def put(self, tenant: str, name: str, value: str) -> None:
        """Set (or replace, for rotation) a secret."""
        key_id, blob = self._seal(tenant, name, value)
        with self.db.transaction() as s:
            row = s.get(SecretRow, (tenant, name))
            if row is None:
                s.add(
                    SecretRow(
                        tenant=tenant,
                        name=name,
                        key_id=key_id,
                        ciphertext=blob,
                        created_at=utcnow(),
                    )
                )
            else:
                row.key_id, row.ciphertext, row.created_at = key_id, blob, utcnow()

    def get(self, tenant: str, name: str) -> str:
        """The plain value; NotFoundError when missing."""
        keys = self.key.load()
        with self.db.transaction() as s:
            row = s.get(SecretRow, (tenant, name))
            if row is None:
                raise NotFoundError(f"tenant {tenant!r} has no secret {name!r}")
            return self._open(row, keys)

    def all_for(self, tenant: str) -> dict[str, str]:
        """Every secret of a tenant, by name."""
        keys = self.key.load()
        with self.db.transaction() as s:
            rows = s.execute(select(SecretRow).where(SecretRow.tenant == tenant)).scalars()
            return {r.name: self._open(r, keys) for r in rows}

    def names(self, tenant: str) -> list[str]:
        """Names of a tenant's secrets (no values)."""
        with self.db.transaction() as s:
            q = select(SecretRow.name).where(SecretRow.tenant == tenant).order_by(SecretRow.name)
            return list(s.execute(q).scalars())

    def delete(self, tenant: str, name: str) -> bool:
        """Delete one secret; True when it existed."""
        with self.db.transaction() as s:
            result = s.execute(
                delete(SecretRow).where(SecretRow.tenant == tenant, SecretRow.name == name)
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def forget(self, tenant: str, *, keep: Collection[str] = ()) -> int:
        """Delete every secret of a tenant but those named in ``keep``; the number deleted."""
        with self.db.transaction() as s:
            result = s.execute(
                delete(SecretRow).where(SecretRow.tenant == tenant, SecretRow.name.not_in(keep))
            )
            return int(result.rowcount)  # type: ignore[attr-defined]

    def rotate_key(self) -> int:
        """Re-seal every secret under a new master key; the number re-sealed.

        Crash-safe: the new key is written beside the old one first, secrets are
        re-sealed in one transaction, then the new key replaces the old file.
        """
        new_key = AESGCM.generate_key(bit_length=256)
        if self.key.pending.exists():
            new_key = self.key.pending.read_bytes()  # resume an interrupted rotation
        else:
            write_key_file(self.key.pending, new_key)
        keys = self.key.load()
        new_id = _key_id(new_key)
        count = 0
        with self.db.transaction() as s:
            for row in s.execute(select(SecretRow)).scalars():
                if row.key_id == new_id:
                    continue
                plain = self._open(row, keys)
                nonce = os.urandom(12)
                row.ciphertext = nonce + AESGCM(new_key).encrypt(
                    nonce, plain.encode(), _aad(row.tenant, row.name)
                )
                row.key_id = new_id
                count += 1
        self.key.promote()
        return count


def generate_password(length: int = 32) -> str:
    """A random URL-safe password."""
    return pysecrets.token_urlsafe(length)[:length]
