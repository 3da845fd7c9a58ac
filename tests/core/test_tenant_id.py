"""The tenant id in ownership marks is stable for a record (SQLite and PostgreSQL) and
changes when the record is forgotten and made again."""

from __future__ import annotations

import pytest

from osp_ops.store.db import Database
from osp_ops.store.tenants import Tenants

pytestmark = pytest.mark.integration


def test_tenant_id_is_stable_per_record(db: Database) -> None:
    tenants = Tenants(db)
    kw = {"app": "openslides", "desired_version": "3.3", "platform": "hosts", "spec_hash": "h"}
    made = tenants.upsert(slug="lyon", **kw)
    assert tenants.require("lyon").tenant_id == made.tenant_id
    assert made.to_json()["owner_mark"] == f"osp-ops tenant lyon {made.tenant_id}"
    assert tenants.upsert(slug="lyon", **kw).tenant_id == made.tenant_id
    tenants.remove("lyon")
    assert tenants.upsert(slug="lyon", **kw).tenant_id != made.tenant_id
