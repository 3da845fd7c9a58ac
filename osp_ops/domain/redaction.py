"""Defence in depth for secrets: known secret values are masked in any text we record.

The secret store registers every value it decrypts; log records, operation events,
step errors and outputs pass through ``redact`` before they are written anywhere.
"""

from __future__ import annotations

import threading

MASK = "***"
_MIN_LENGTH = 8  # shorter values would mask ordinary words
_known: set[str] = set()
_lock = threading.Lock()


def register(value: str) -> None:
    """Remember a secret value so it is masked from now on in this process."""
    if len(value) >= _MIN_LENGTH:
        with _lock:
            _known.add(value)


def redact(text: str) -> str:
    """``text`` with every known secret value replaced by ``***``."""
    if not _known or not text:
        return text
    with _lock:
        values = sorted(_known, key=len, reverse=True)
    for value in values:
        if value in text:
            text = text.replace(value, MASK)
    return text
