"""A running backup reports bytes read and MB/s (engine wrapper around any Source)."""

from __future__ import annotations

import pytest

from osp_ops.backups import CommandSource
from osp_ops.backups import sources as ops

pytestmark = pytest.mark.unit


def test_metered_source_reports_progress_and_passes_everything_through(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ops, "PROGRESS_EVERY", 0.0)
    seen: list[tuple[int, float]] = []
    inner = CommandSource(argv=["head", "-c", "3000000", "/dev/zero"], kind="tar")
    source = ops.MeteredSource(inner, lambda n, s: seen.append((n, s)))
    assert source.kind == "tar"
    stream = source.open()
    assert isinstance(stream.fileno(), int)  # the pipeline widens the source's pipe
    total = 0
    while chunk := stream.read(65536):
        total += len(chunk)
    source.finish()
    assert total == 3_000_000
    assert seen and seen[-1][0] <= total and [n for n, _ in seen] == sorted(n for n, _ in seen)
