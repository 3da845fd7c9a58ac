"""Known secret values are masked wherever osp-ops records text."""

from __future__ import annotations

import logging

import pytest

from osp_ops.cli.logs import RedactingFormatter
from osp_ops.domain.redaction import MASK, redact, register

pytestmark = pytest.mark.unit


def test_registered_values_are_masked_longest_first() -> None:
    register("canary-Zq8v1-secret")
    register("canary-Zq8v1-secret-longer")
    text = "dsn=postgresql://u:canary-Zq8v1-secret-longer@h/db and canary-Zq8v1-secret"
    assert redact(text) == f"dsn=postgresql://u:{MASK}@h/db and {MASK}"


def test_short_values_are_not_registered() -> None:
    register("abc")
    assert redact("abc def") == "abc def"


def test_log_formatter_masks_and_adds_context() -> None:
    register("canary-log-9f3k2m")
    record = logging.LogRecord(
        "osp_ops",
        logging.ERROR,
        __file__,
        1,
        "failed with password %s",
        ("canary-log-9f3k2m",),
        None,
    )
    record.tenant = "nanterre"
    line = RedactingFormatter("%(message)s").format(record)
    assert "canary-log-9f3k2m" not in line
    assert line == f"failed with password {MASK} tenant=nanterre"
