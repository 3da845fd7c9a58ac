"""Prune and sampled verification against a store with a few weeks of backups."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from osp_ops.backups import (
    CommandSource,
    LocalStore,
    list_backups,
    prune,
    run_backup,
    verify_backups,
)
from osp_ops.backups.manifest import backup_prefix
from osp_ops.domain.spec import Retention
from tests.factories import SPEC_YAML
from tests.fixtures.backup_data import Keys

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 28, 16, 0, tzinfo=UTC)


def _backup(store: LocalStore, keys: Keys, when: datetime) -> str:
    return run_backup(
        source=CommandSource(["sh", "-c", "seq 1 1000"]), files=None, store=store,
        tenant="nanterre", spec_yaml=SPEC_YAML, recipients=keys.recipients,
        app_version="0.28.4", row_counts={}, now=when,
    ).backup_id  # fmt: skip


def test_prune_keeps_gfs_and_newest_verified(tmp_path: Path, keys: Keys) -> None:
    store = LocalStore(tmp_path / "store")
    ids = [_backup(store, keys, NOW - timedelta(days=d)) for d in range(40, -1, -1)]  # 41 days
    newest = ids[-1]
    verified_old = ids[5]  # the only verified backup: 35 days old
    # An interrupted run (no manifest) a day ago, and one started a minute ago.
    for when in (NOW - timedelta(days=1, hours=1), NOW - timedelta(minutes=1)):
        bid = f"{when:%Y%m%dT%H%M%SZ}-abcdef"
        store.put_stream(f"{backup_prefix('nanterre', bid)}/db.dump.zst.age", [b"partial"])
    retention = Retention(daily=7, weekly=4, monthly=2, yearly=1)

    dry = prune(store, "nanterre", retention, NOW, verified={verified_old}, dry_run=True)
    assert len(list_backups(store, "nanterre")) == 43  # nothing deleted
    result = prune(store, "nanterre", retention, NOW, verified={verified_old})
    assert result.kept == dry.kept and result.deleted == dry.deleted
    assert newest in result.kept and "daily 2026-11-28" in result.kept[newest]
    assert "newest verified" in result.kept[verified_old]
    assert len(result.incomplete_deleted) == 1  # the young one may still be running
    left = list_backups(store, "nanterre")
    assert {i.backup_id for i in left if i.state == "complete"} == set(result.kept)
    assert [i.state for i in left].count("incomplete") == 1
    assert len(result.kept) <= 7 + 4 + 2 + 1 + 1
    again = prune(store, "nanterre", retention, NOW, verified={verified_old})
    assert again.deleted == () and again.kept == result.kept


def test_verify_a_sample(tmp_path: Path, keys: Keys) -> None:
    store = LocalStore(tmp_path / "store")
    ids = [_backup(store, keys, NOW - timedelta(days=d)) for d in range(10)]
    reports = verify_backups(store, "nanterre", [keys.tenant_secret], sample=0.3,
                             rng=random.Random(1))  # fmt: skip
    assert len(reports) == 3 and all(r.ok for r in reports)
    assert max(ids) in {r.backup_id for r in reports}  # the newest is always checked
    assert len(verify_backups(store, "nanterre", [keys.tenant_secret])) == 10
