"""The ops recovery key: the second recipient of every backup, its secret kept offline.

Without one, a backup is readable only with the tenant's key, which lives in the state
DB under the master key: losing either loses every backup. ``recovery_warning`` says so
wherever it matters (``config show``, ``backup run``, ``tenant delete``);
``ensure_recovery_key`` makes one into the data directory for the operator to move
offline (``recovery.key``), keeping only its public half (``recovery.pub``), which the
settings read when ``recovery_public_key`` is unset.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from osp_ops.backups import new_identity
from osp_ops.settings import Settings


@dataclass(frozen=True)
class RecoveryKey:
    """The recovery key in effect; ``secret_file`` is set when osp-ops just made it."""

    public: str
    secret_file: Path | None = None


def recovery_warning(settings: Settings) -> str | None:
    """A warning when no recovery key is set (None when one is)."""
    if settings.effective_recovery_public_key:
        return None
    return (
        "no recovery key (recovery_public_key): backups are encrypted to the tenant's key "
        "only, which is lost with the state DB or the master key; "
        "`osp-ops backup recovery-key` makes one"
    )


def ensure_recovery_key(settings: Settings) -> RecoveryKey:
    """The recovery key in effect, or a new one: ``<data_dir>/recovery.key`` (0600, to
    move offline) and ``recovery.pub`` (kept, read by the settings)."""
    public = settings.effective_recovery_public_key
    if public:
        return RecoveryKey(public)
    secret, public = new_identity()
    directory = settings.data_dir
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    secret_file = directory / "recovery.key"
    fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(f"# osp-ops recovery key, public key: {public}\n{secret}\n")
    (directory / "recovery.pub").write_text(public + "\n", "utf-8")
    return RecoveryKey(public, secret_file)
