"""Backup sources that report their progress: bytes read and MiB/s every few seconds.

The pipeline is unchanged: ``MeteredSource`` wraps any ``Source`` and counts what the
pipeline reads from its stream.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import IO, cast

from osp_ops.backups.pipeline import Source

PROGRESS_EVERY = 2.0  # seconds between progress events of a running dump


class MeteredReader:
    """Counts what the pipeline reads and reports bytes and MiB/s every few seconds."""

    def __init__(self, inner: IO[bytes], report: Callable[[int, float], None]) -> None:
        self.inner, self.report = inner, report
        self.count, self.t0 = 0, time.monotonic()
        self.last = self.t0

    def read(self, n: int = -1) -> bytes:
        data = self.inner.read(n)
        self.count += len(data)
        now = time.monotonic()
        if now - self.last >= PROGRESS_EVERY:
            self.last = now
            self.report(self.count, now - self.t0)
        return data

    def fileno(self) -> int:
        return self.inner.fileno()


@dataclass
class MeteredSource:
    """A Source whose stream reports its progress (the pipeline is unchanged)."""

    inner: Source
    report: Callable[[int, float], None]
    kind: str = ""

    def __post_init__(self) -> None:
        self.kind = self.inner.kind

    @property
    def versions(self) -> Mapping[str, str]:
        return dict(getattr(self.inner, "versions", {}) or {})

    def open(self) -> IO[bytes]:
        return cast(IO[bytes], MeteredReader(self.inner.open(), self.report))

    def finish(self) -> None:
        self.inner.finish()

    def kill(self) -> None:
        self.inner.kill()
