"""Multipart upload bodies, pure: part sizes, and a stream's chunks gathered into parts.

Part ``i`` (0-based) is ``8 MiB x 2**(i // 1000)`` bytes (see ``s3.py``). A part is
the stream's own chunks behind a seekable file object, so neither osp-ops nor botocore
copies it.
"""

from __future__ import annotations

import bisect
import io
import itertools
from collections import deque
from typing import Any

from osp_ops.domain.errors import BackupError

MIB = 1024 * 1024
BASE_PART = 8 * MIB
PARTS_PER_TIER = 1000
MAX_PARTS = 10_000


def part_size(index: int, base: int = BASE_PART) -> int:
    """Size of part ``index`` (0-based): ``base`` doubled every 1000 parts."""
    if index >= MAX_PARTS:
        raise BackupError("stream too large for one S3 multipart upload (10,000 parts)")
    return int(base * 2 ** (index // PARTS_PER_TIER))


class Parts:
    """Chunks gathered into parts of exact sizes, without copying them."""

    def __init__(self) -> None:
        self.chunks: deque[bytes | memoryview] = deque()
        self.size = 0

    def add(self, chunk: bytes) -> None:
        """Append a chunk (kept as it is until taken)."""
        self.chunks.append(chunk)
        self.size += len(chunk)

    def take(self, n: int) -> Body:
        """The first ``n`` bytes (all of them if fewer), as a request body."""
        out: list[bytes | memoryview] = []
        got = 0
        while self.chunks and got < n:
            chunk = self.chunks.popleft()
            if got + len(chunk) > n:
                view = memoryview(chunk)
                chunk, rest = view[: n - got], view[n - got :]
                self.chunks.appendleft(rest)
            out.append(chunk)
            got += len(chunk)
        self.size -= got
        return Body(out)


class Body(io.RawIOBase):
    """A read-only, seekable file over a part's chunks: the request body of one part.

    botocore reads it to hash it (signature, CRC32), rewinds it, then sends it in small
    blocks; a retry rewinds it again. Given ``bytes`` instead, botocore's connection
    would append the body to the request headers, a copy of every part in flight.
    """

    def __init__(self, chunks: list[bytes | memoryview]) -> None:
        super().__init__()
        self._chunks = chunks
        self._starts = list(itertools.accumulate((len(c) for c in chunks), initial=0))
        self._pos = 0

    def __len__(self) -> int:
        return self._starts[-1]

    def readable(self) -> bool:
        """Always readable."""
        return True

    def seekable(self) -> bool:
        """Always seekable."""
        return True

    def tell(self) -> int:
        """The read position."""
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        """Move the read position (clamped to the body)."""
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: len(self)}[whence]
        self._pos = max(0, min(base + offset, len(self)))
        return self._pos

    def readinto(self, buffer: Any) -> int:
        """Copy the next bytes into ``buffer``; 0 at the end."""
        view = memoryview(buffer).cast("B")
        n = 0
        i = bisect.bisect_right(self._starts, self._pos) - 1
        while n < len(view) and i < len(self._chunks):
            chunk = self._chunks[i]
            start = self._pos - self._starts[i]
            k = min(len(view) - n, len(chunk) - start)
            view[n : n + k] = memoryview(chunk)[start : start + k]
            n += k
            self._pos += k
            i += 1
        return n
