"""Admin passwords: argon2id hashes (the only module that imports argon2)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
# Verified when the account is unknown, so a wrong name takes as long as a wrong password.
_DUMMY = _hasher.hash("not a password of anyone")
MIN_PASSWORD = 12


def hash_password(password: str) -> str:
    """The argon2id hash of ``password`` (ValueError when shorter than 12 characters)."""
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"a password has at least {MIN_PASSWORD} characters")
    return _hasher.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    """True when ``password`` matches the stored hash (False for an unknown account)."""
    try:
        return _hasher.verify(stored or _DUMMY, password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False
