"""The one error tree of osp-ops.

    OspOpsError                  every error raised on purpose; the CLI prints it as one line
    ├── PermanentError           retrying cannot help
    │   ├── SpecError            a tenant spec or settings file is invalid (lists every problem)
    │   ├── CatalogError         an app or version the catalog does not know
    │   ├── NotFoundError        a tenant, operation or backup that does not exist
    │   ├── AmbiguousError       an id prefix that starts several ids
    │   ├── IllegalTransitionError  a phase change the lifecycle forbids
    │   │   ├── InterruptedOperationError  a request differing from an interrupted one
    │   │   └── TenantDeletedError   converging a deleted tenant without --reuse-deleted
    │   ├── ConfigError          operator settings are wrong or missing
    │   ├── PlatformError        a platform refused or failed (names host/object and message)
    │   ├── BackupError          a backup is missing, incomplete or fails verification
    │   └── SecretError          a secret cannot be decrypted (wrong key)
    ├── TemporaryError           a retry may help (network blip, 503); carries a delay hint
    ├── LeaseHeldError           another operation holds the tenant's lease (names the holder)
    ├── RolledBackError          the operation failed and was undone (an upgrade rolled back)
    └── OperationCancelledError  the operation was cancelled by an operator

Every error may carry a ``hint`` (what to do next: "did you mean 'nanterre'?"), printed
by the CLI as one ``Hint:`` line below the ``Error:`` line. Adapters translate library
errors into these with ``raise ... from e``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class OspOpsError(Exception):
    """Root of every error osp-ops raises on purpose."""

    exit_code: int = 1
    retryable: bool = False
    hint: str | None = None

    def __init__(self, *args: object, hint: str | None = None) -> None:
        super().__init__(*args)
        if hint is not None:
            self.hint = hint


class PermanentError(OspOpsError):
    """Retrying the same thing cannot succeed."""


class TemporaryError(OspOpsError):
    """A retry may succeed; ``delay`` is a hint in seconds."""

    retryable = True

    def __init__(self, message: str, *, delay: float = 1.0) -> None:
        super().__init__(message)
        self.delay = delay


@dataclass(frozen=True)
class Problem:
    """One validation problem: where (file and field path) and what."""

    location: str
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.message}" if self.location else self.message


class SpecError(PermanentError):
    """Invalid input; ``problems`` lists every problem found, not just the first."""

    exit_code = 2

    def __init__(self, problems: Sequence[Problem], *, subject: str = "tenant spec") -> None:
        self.problems = list(problems)
        self.subject = subject
        lines = "; ".join(str(p) for p in self.problems)
        super().__init__(f"invalid {subject}: {lines}")


class CatalogError(PermanentError):
    """The app catalog does not know an app, a version or an upgrade path."""

    exit_code = 2


class ConfigError(PermanentError):
    """Operator settings are wrong or missing."""

    exit_code = 2


class NotFoundError(PermanentError):
    """A tenant, operation, backup or secret that does not exist."""

    exit_code = 3


class AmbiguousError(PermanentError):
    """An id prefix that starts several ids; the message lists them."""

    exit_code = 2


class IllegalTransitionError(PermanentError):
    """The tenant lifecycle forbids this phase change."""

    exit_code = 4


class InterruptedOperationError(IllegalTransitionError):
    """An interrupted operation of this kind waits to be resumed, with other parameters."""


class TenantDeletedError(IllegalTransitionError):
    """The tenant was deleted; only an explicit re-creation brings it back."""

    def __init__(self, slug: str) -> None:
        self.slug = slug
        super().__init__(
            f"tenant {slug!r} was deleted: `osp-ops tenant create {slug} --reuse-deleted` "
            "brings it back (new secrets, an empty database)"
        )


class LeaseHeldError(OspOpsError):
    """Another operation holds the tenant's lease."""

    exit_code = 5

    def __init__(self, tenant: str, holder: str, expires_in: float) -> None:
        self.tenant = tenant
        self.holder = holder
        self.expires_in = expires_in
        super().__init__(
            f"tenant {tenant!r} is busy: {holder} holds its lease "
            f"(expires in {expires_in:.0f}s unless renewed); retry later or use --wait"
        )


class OperationCancelledError(OspOpsError):
    """An operator cancelled the operation."""

    exit_code = 6


class RolledBackError(OspOpsError):
    """The operation failed and was undone: the tenant is as it was before (an upgrade
    rolled back to its previous version). Running the command anew starts afresh."""

    exit_code = 8


class PlatformError(PermanentError):
    """A platform (hosts, kubernetes) failed; the message names where and why."""


class BackupError(PermanentError):
    """A backup is missing, incomplete, corrupted or cannot be restored."""


class SecretError(PermanentError):
    """A secret cannot be read: missing, or the master key does not match."""


def recorded_message(error: BaseException) -> str:
    """The text an operation records for ``error``: its message when osp-ops raised it on
    purpose, ``unexpected <repr>`` for anything else (a bug, or a library's error)."""
    return str(error) if isinstance(error, OspOpsError) else f"unexpected {error!r}"
