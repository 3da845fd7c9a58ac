"""Logging of the CLI: one line per record, tenant and operation on each, secrets masked."""

from __future__ import annotations

import logging
import sys

from osp_ops.domain.redaction import redact


class RedactingFormatter(logging.Formatter):
    """Formats records with tenant/operation context and masks known secret values."""

    def format(self, record: logging.LogRecord) -> str:
        """One redacted line."""
        context = " ".join(
            f"{key}={getattr(record, key)}"
            for key in ("tenant", "operation")
            if getattr(record, key, None)
        )
        text = super().format(record)
        return redact(f"{text} {context}" if context else text)


def _not_the_cli_error(record: logging.LogRecord) -> bool:
    """False for the runner's "operation failed": the CLI prints that error itself, as its
    one ``Error:`` line (a worker logs its own line per failed operation)."""
    return not (record.name == "osp_ops.engine" and record.msg == "operation failed")


def setup(verbose: bool) -> None:
    """Log to stderr: warnings by default, everything with --verbose."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    if not verbose:
        handler.addFilter(_not_the_cli_error)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.WARNING)
