"""Abuse controls of the portal: CSRF tokens, rate limits, security headers."""

from __future__ import annotations

import hmac
import math
import secrets
import threading
import time
from collections import deque

CSRF_COOKIE = "osp_csrf"
CSRF_FIELD = "csrf"
HONEYPOT_FIELD = "website"

# No script anywhere; styles only from the portal's own sheet.
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",  # private links must not leak to other sites
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
    "Cache-Control": "no-store",
}


def new_csrf_token() -> str:
    """A fresh CSRF token (the cookie and the hidden field carry it)."""
    return secrets.token_urlsafe(32)


def csrf_ok(cookie: str | None, field: object) -> bool:
    """True when the form's token matches the cookie's (double submit, constant time)."""
    if not cookie or not isinstance(field, str) or not field:
        return False
    return hmac.compare_digest(cookie.encode(), field.encode("utf-8", "surrogatepass"))


class RateLimiter:
    """At most ``limit`` hits per key in any ``window`` seconds (sliding, in memory:
    per portal process)."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit, self.window = limit, window
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, key: str, *, now: float | None = None) -> int | None:
        """Seconds until ``key`` may hit again, or None when it may now (not counted)."""
        with self._lock:
            return self._wait(key, time.monotonic() if now is None else now)

    def hit(self, key: str, *, now: float | None = None) -> int | None:
        """Count a hit; returns the seconds to wait instead when over the limit (the check
        and the count are one step: concurrent hits never pass the limit)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            wait = self._wait(key, now)
            if wait is None:
                self._hits.setdefault(key, deque()).append(now)
                if len(self._hits) > 100_000:  # bound memory under a flood of addresses
                    self._hits.clear()
            return wait

    def _wait(self, key: str, now: float) -> int | None:
        """``retry_after`` under the lock, dropping the hits out of the window."""
        hits = self._hits.get(key)
        if hits is None:
            return None
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        if len(hits) < self.limit:
            return None
        return max(1, math.ceil(hits[0] + self.window - now))
