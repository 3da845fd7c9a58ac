"""Small stream pieces the pipeline is built from.

- :class:`Digest` counts and hashes bytes; :class:`HashingReader` what is read through it.
- :class:`ChunkPipe` joins a writer thread to a reader with a bounded queue of chunks,
  so a fast producer can hold at most ``depth`` chunks in memory.
- :class:`IterReader` turns an iterator of chunks (an object download) into a file.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import queue
import threading
from collections.abc import Iterator
from typing import IO, Any

CHUNK = 1024 * 1024


class Digest:
    """Size and SHA-256 of the bytes given to ``update`` (hashlib releases the GIL)."""

    def __init__(self) -> None:
        self.size = 0
        self._sha = hashlib.sha256()

    def update(self, data: bytes) -> None:
        """Count and hash ``data``."""
        self._sha.update(data)
        self.size += len(data)

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of everything so far."""
        return self._sha.hexdigest()


class HashingReader(io.RawIOBase):
    """A reader that passes data through while counting bytes and computing SHA-256."""

    def __init__(self, inner: IO[bytes] | io.RawIOBase | Any) -> None:
        super().__init__()
        self._inner = inner
        self.size = 0
        self._sha = hashlib.sha256()

    def readable(self) -> bool:
        """Always readable."""
        return True

    def readinto(self, buffer: Any) -> int:
        """Read from the inner stream into ``buffer``, hashing what was read."""
        view = memoryview(buffer).cast("B")
        data = self._inner.read(len(view))
        if not data:
            return 0
        n = len(data)
        view[:n] = data
        self.size += n
        self._sha.update(data)
        return n

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of everything read so far."""
        return self._sha.hexdigest()


class PipeClosedError(Exception):
    """The other side of a ChunkPipe went away."""


_EOF = object()


class ChunkPipe:
    """A bounded pipe of bytes between threads.

    The writer side (``write``, ``put``, ``close``, ``fail``) hands chunks over through a
    queue of at most ``depth`` chunks: ``write`` gathers bytes into chunks of
    ``chunk_size``, ``put`` hands a chunk over as it is (the caller bounds its size).
    The reader side is ``chunks()`` (an iterator) or ``reader()`` (a file object).
    ``fail(exc)`` makes the reader raise ``exc``; ``abort()`` from the reader side makes
    the writer's next ``write`` raise :class:`PipeClosedError`; ``cancel(exc)`` does both
    at once, from anywhere (a failed stage of a pipeline stops the others).
    """

    def __init__(self, *, chunk_size: int = CHUNK, depth: int = 4) -> None:
        self._q: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._buf = bytearray()
        self._chunk = chunk_size
        self._aborted = threading.Event()
        self._error: BaseException | None = None

    # -- writer side
    def _put(self, item: object) -> None:
        while True:
            if self._aborted.is_set():
                raise PipeClosedError("reader went away")
            try:
                self._q.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Add bytes; blocks while the queue is full."""
        if self._aborted.is_set():
            raise PipeClosedError("reader went away")
        if not self._buf and len(data) == self._chunk:
            self._put(bytes(data))
            return self._chunk
        self._buf += data
        while len(self._buf) >= self._chunk:
            self._put(bytes(memoryview(self._buf)[: self._chunk]))
            del self._buf[: self._chunk]
        return len(data)

    def put(self, chunk: bytes) -> None:
        """Hand one chunk over as it is (after what ``write`` gathered); blocks while full."""
        if self._buf:
            self._put(bytes(self._buf))
            self._buf.clear()
        if chunk:
            self._put(chunk)

    def flush(self) -> None:
        """Nothing to do: chunks are handed over as they fill."""

    def close(self) -> None:
        """Hand over what is left and signal the end of the stream."""
        if self._buf:
            self._put(bytes(self._buf))
            self._buf.clear()
        self._put(_EOF)

    def fail(self, exc: BaseException) -> None:
        """Make the reader raise ``exc`` instead of seeing a clean end."""
        self._error = self._error or exc
        with contextlib.suppress(PipeClosedError):
            self._put(exc)

    # -- reader side
    def abort(self) -> None:
        """Tell the writer to stop, and drain the queue so it is not blocked."""
        self._aborted.set()
        while True:
            try:
                self._q.get_nowait()
            except queue.Empty:
                return

    def cancel(self, exc: BaseException) -> None:
        """Stop both sides: the writer gets PipeClosedError, the reader ``exc``."""
        self._error = self._error or exc
        self.abort()

    def chunks(self) -> Iterator[bytes]:
        """Yield chunks until the writer closes; raise what the writer failed with."""
        while True:
            if self._aborted.is_set() and self._error is not None:
                raise self._error  # cancelled
            try:
                item = self._q.get(timeout=0.2)
            except queue.Empty:
                continue
            if item is _EOF:
                return
            if isinstance(item, BaseException):
                raise item
            assert isinstance(item, bytes)
            yield item

    def reader(self) -> IterReader:
        """The reader side as a file object."""
        return IterReader(self.chunks())


class IterReader(io.RawIOBase):
    """A read-only file over an iterator of byte chunks."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        super().__init__()
        self._it = chunks
        self._pending = b""
        self._offset = 0

    def readable(self) -> bool:
        """Always readable."""
        return True

    def readinto(self, buffer: Any) -> int:
        """Copy the next bytes into ``buffer``; 0 at the end."""
        view = memoryview(buffer).cast("B")
        while self._offset >= len(self._pending):
            try:
                self._pending = next(self._it)
            except StopIteration:
                return 0
            self._offset = 0
        n = min(len(view), len(self._pending) - self._offset)
        view[:n] = self._pending[self._offset : self._offset + n]
        self._offset += n
        return n


class CountingWriter:
    """A writer that discards or forwards data while counting and hashing it."""

    def __init__(self, inner: IO[bytes] | None = None) -> None:
        self._inner = inner
        self.size = 0
        self._sha = hashlib.sha256()

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Hash, count, and forward."""
        self._sha.update(data)
        n = len(data)
        self.size += n
        if self._inner is not None:
            self._inner.write(data)
        return n

    def flush(self) -> None:
        """Flush the inner writer."""
        if self._inner is not None:
            self._inner.flush()

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of everything written so far."""
        return self._sha.hexdigest()
