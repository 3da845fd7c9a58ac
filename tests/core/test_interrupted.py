"""An operation is interrupted when its lease says its runner is gone: released, TTL
expired (a holder on another host), or held by a dead process of this host; it is
running only while its live runner holds the lease."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from osp_ops.engine.context import build_context
from osp_ops.engine.interrupted import is_interrupted, status
from osp_ops.platforms.fake import FakePlatform
from osp_ops.settings import Settings
from osp_ops.store.leases import holder_id

pytestmark = pytest.mark.integration


def test_interrupted_is_what_the_lease_says(tmp_path: Path, state_url: str) -> None:
    settings = Settings(data_dir=tmp_path / "data", tenants_dir=tmp_path / "t", state_url=state_url)
    ctx = build_context(settings, actor="test", platform_factory=lambda _s: FakePlatform())
    slug = f"i{os.getpid() % 100000}{int(time.time() * 1000) % 100000}"
    op, _ = ctx.operations.enqueue(
        tenant=slug, kind="backup", steps=("dump-and-upload",), params={}, requested_by="t"
    )
    assert status(ctx, op) == "queued"
    me = holder_id(f"op:{op.id}")
    ctx.operations.mark_running(op.id, me)
    lease = ctx.leases.acquire(slug, me, 60)
    assert status(ctx, ctx.operations.get(op.id)) == "running"  # a live runner holds it
    ctx.leases.release(lease)
    assert status(ctx, ctx.operations.get(op.id)) == "interrupted"  # nobody holds it

    dead = subprocess.Popen(["true"])
    dead.wait()
    ctx.leases.acquire(slug, f"op:{op.id}@{socket.gethostname()}:{dead.pid}:1", 60)
    assert is_interrupted(ctx, ctx.operations.get(op.id))  # its process is gone

    far = f"op:{op.id}@another-host:1:1"
    ctx.leases.acquire(slug, far, 0.5)  # taken over: the dead holder's lease is free
    assert not is_interrupted(ctx, ctx.operations.get(op.id))  # another host: its TTL
    time.sleep(0.7)
    assert status(ctx, ctx.operations.get(op.id)) == "interrupted"  # TTL expired
