"""What the runner tells whoever watches an operation (the CLI's live display, logs)."""

from __future__ import annotations

from typing import Protocol

from osp_ops.platforms.base import Event
from osp_ops.store.operations import OperationInfo


class Progress(Protocol):
    """Receives an operation's progress as it happens."""

    def started(self, op: OperationInfo) -> None:
        """The operation starts or resumes."""

    def step(self, name: str, status: str, *, attempt: int = 1, detail: str | None = None) -> None:
        """A step changed status: running, done, skipped, retrying, failed."""

    def event(self, step: str, event: Event) -> None:
        """A platform reported something during a step."""


class SilentProgress:
    """Progress that shows nothing (workers, tests)."""

    def started(self, op: OperationInfo) -> None:
        """Ignore."""

    def step(self, name: str, status: str, *, attempt: int = 1, detail: str | None = None) -> None:
        """Ignore."""

    def event(self, step: str, event: Event) -> None:
        """Ignore."""
