"""The portal's rate limiter: a sliding window per key, counted in one step."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator

import pytest

from osp_ops.web.security import RateLimiter

pytestmark = pytest.mark.unit


@pytest.fixture
def fast_switches() -> Iterator[None]:
    """Threads switch as often as the interpreter allows, so that races show."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def test_sliding_window_and_retry_after() -> None:
    limiter = RateLimiter(2, 100)
    assert limiter.hit("a", now=0) is None and limiter.hit("a", now=10) is None
    assert limiter.hit("a", now=20) == 80  # not counted: still two in the window
    assert limiter.retry_after("b", now=20) is None
    assert limiter.retry_after("a", now=100.5) is None  # the first hit left the window
    assert limiter.hit("a", now=100.5) is None
    assert limiter.hit("a", now=101) == 9


def _passed(limiter: RateLimiter, threads: int, hits: int) -> int:
    """How many of ``hits`` concurrent hits by each of ``threads`` threads on one key
    were let through."""
    start = threading.Barrier(threads)
    passed: list[bool] = []

    def one() -> None:
        start.wait()
        passed.extend(limiter.hit("1.2.3.4") is None for _ in range(hits))

    running = [threading.Thread(target=one) for _ in range(threads)]
    for t in running:
        t.start()
    for t in running:
        t.join()
    return sum(passed)


def test_concurrent_hits_never_pass_the_limit(fast_switches: None) -> None:
    for _ in range(20):
        assert _passed(RateLimiter(5, 3600), threads=16, hits=4) == 5
