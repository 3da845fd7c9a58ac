"""Tables at 80 columns: optional columns are left out before words or ids break."""

from __future__ import annotations

import pytest

from osp_ops.cli.output import fit_columns

pytestmark = pytest.mark.unit

COLUMNS = ["ID", "TENANT", "KIND", "STATUS", "STEPS", "TOOK", "BY", "CREATED (UTC)"]
ROW = ["20261201T123957-5bb0c7f5", "crashville", "create", "interrupted", "3/7",
       "3 min 5 s", "root@ci-machine", "12-01 12:39"]  # fmt: skip


def test_a_wide_terminal_keeps_every_column() -> None:
    assert fit_columns(COLUMNS, [ROW], ("BY", "STEPS", "TOOK"), 200) == (COLUMNS, [ROW])


def test_at_80_columns_the_optional_ones_go_first_in_order() -> None:
    kept, rows = fit_columns(COLUMNS, [ROW], ("BY", "STEPS", "TOOK"), 80)
    assert kept == ["ID", "TENANT", "KIND", "STATUS", "TOOK", "CREATED (UTC)"]
    assert rows == [[ROW[0], ROW[1], ROW[2], ROW[3], ROW[5], ROW[7]]]
    assert sum(len(c) for c in rows[0]) + len(kept) <= 80


def test_columns_not_named_are_never_dropped() -> None:
    kept, _ = fit_columns(COLUMNS, [ROW], (), 20)
    assert kept == COLUMNS
