"""Memory stays bounded whatever the stream size: 400 MB through the pipeline."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent(
    """
    import hashlib, resource
    from osp_ops.backups.pipeline import CommandSource, Encoding, encode_to_store, new_identity

    class NullStore:
        url = "null://"
        def put_stream(self, key, chunks):
            h, n = hashlib.sha256(), 0
            for c in chunks:
                h.update(c); n += len(c)
            return n, h.hexdigest()

    _, public = new_identity()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    src = CommandSource(["sh", "-c", "head -c 400000000 /dev/urandom"])
    out = encode_to_store(source=src, store=NullStore(), key="k", encoding=Encoding((public,)))
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert out.plain_size == 400_000_000
    print(before, after)
    """
)


def test_pipeline_memory_is_bounded() -> None:
    res = subprocess.run(
        [sys.executable, "-c", CHILD], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert res.returncode == 0, res.stderr
    before, after = (int(x) for x in res.stdout.split())
    assert (after - before) / 1024 < 64, f"peak RSS grew by {(after - before) / 1024:.0f} MiB"
