"""``app_storage: s3`` on a real cluster: a bucket per tenant on real MinIO.

kube-apiserver + kwok run the chart; PostgreSQL holds the database; MinIO holds the
bucket. The uploads Decidim would write are put by the test (no Decidim image here).
Covers create (bucket, Secret keys, values, egress), backup with files, an in-place
restore (the app suspended while database and files are switched) and delete.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from pydantic import SecretStr

from osp_ops.domain.catalog import default_catalog
from osp_ops.engine import app_storage
from osp_ops.engine.api import request
from osp_ops.engine.context import Context, build_context
from osp_ops.engine.kinds import restore as restores
from osp_ops.engine.runner import run_operation
from osp_ops.platforms.kubernetes import KubernetesPlatform
from osp_ops.settings import Settings
from tests.factories import kube_spec
from tests.fixtures.k8s_operator import admin
from tests.fixtures.kube import KubeCluster
from tests.fixtures.minio import MinioServer

pytestmark = pytest.mark.k8s


@pytest.fixture
def bucket_ctx(settings: Settings, s3: MinioServer) -> Iterator[Context]:
    s3_settings = settings.model_copy(
        update={
            "app_storage": "s3",
            "app_s3_endpoint_url": s3.endpoint_url,
            "app_s3_access_key_id": s3.access_key,
            "app_s3_secret_access_key": SecretStr(s3.secret_key),
            "app_s3_bucket_prefix": f"k{secrets.token_hex(3)}-",
        }
    )
    platform = KubernetesPlatform(
        settings=s3_settings, catalog=default_catalog(), poll_interval=0.2, rollout_timeout=180
    )
    try:
        yield build_context(s3_settings, actor="test", platform_factory=lambda spec: platform)
    finally:
        platform.close()


def _run(ctx: Context, kind: str, spec: Any, **kw: Any) -> Any:
    op, _ = request(ctx, kind, spec, **kw)
    done = run_operation(ctx, op.id)
    assert done.status == "succeeded", done.error
    return done


def test_tenant_bucket_create_backup_restore_delete(
    kube: KubeCluster, s3: MinioServer, bucket_ctx: Context
) -> None:
    ctx, slug = bucket_ctx, "angers"
    spec = kube_spec(slug)
    _run(ctx, "create", spec)
    store = app_storage.tenant_store(ctx.settings, spec)
    bucket = store.bucket

    k = admin(kube)
    ns = f"osp-{slug}"
    secret = k.get(f"/api/v1/namespaces/{ns}/secrets/decidim-secrets")
    data = {key: base64.b64decode(v).decode() for key, v in secret["data"].items()}
    assert data["AWS_ACCESS_KEY_ID"] == s3.access_key
    assert data["AWS_SECRET_ACCESS_KEY"] == s3.secret_key
    config = k.get(f"/api/v1/namespaces/{ns}/configmaps/decidim-config")["data"]
    assert config["AWS_BUCKET"] == bucket
    assert config["AWS_ENDPOINT"] == s3.endpoint_url
    # No uploads volume; the pods may reach MinIO (and nothing else new).
    pvcs = k.get(f"/api/v1/namespaces/{ns}/persistentvolumeclaims")["items"]
    assert pvcs == []
    policies = k.get(f"/apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies")["items"]
    egress = [rule for p in policies for rule in p["spec"].get("egress", [])]
    port = int(s3.endpoint_url.rsplit(":", 1)[1])
    assert any(
        r["to"][0].get("ipBlock", {}).get("cidr") == "127.0.0.1/32"
        and r["ports"][0]["port"] == port
        for r in egress
        if r.get("to")
    ), egress

    store.put_stream("photo-key", [b"before the backup"], content_type="image/jpeg")
    _run(ctx, "backup", spec)
    backup_id = restores.find_backup(ctx, slug, None).backup_id
    store.put_stream("photo-key", [b"changed later"], content_type="image/jpeg")
    store.put_stream("added-later", [b"new"], content_type="text/plain")

    params = restores.restore_params(ctx, spec, backup_id, datetime.now(UTC))
    done = _run(ctx, "restore", spec, params=params)
    outputs = {s.name: s.output or "" for s in done.steps}
    assert outputs["stop-app"].startswith("app stopped")
    assert outputs["start-app"] == "app started"
    assert [o.key for o in store.list("") if not o.key.startswith(".osp-ops/")] == ["photo-key"]
    _size, content_type, chunks = store.get_object_stream("photo-key")
    assert (b"".join(chunks), content_type) == (b"before the backup", "image/jpeg")
    web = k.get(f"/apis/apps/v1/namespaces/{ns}/deployments/decidim-web")
    assert web["spec"]["replicas"] >= 1  # running again after the switch

    # A clone from the same backup: a new tenant with its own bucket holding the files.
    info = restores.find_backup(ctx, slug, backup_id)
    clone = restores.clone_spec(ctx, spec, "angers-copie", backup=info)
    ctx.specs.write(clone)
    _run(ctx, "create", clone)
    clone_params = restores.restore_params(
        ctx, clone, backup_id, datetime.now(UTC), source_tenant=slug
    )
    _run(ctx, "restore", clone, params=clone_params)
    restores.drop_retired(ctx, clone)
    clone_store = app_storage.tenant_store(ctx.settings, clone)
    assert clone_store.bucket != bucket
    assert [o.key for o in clone_store.list("")] == ["photo-key"]
    assert b"".join(clone_store.get_stream("photo-key")) == b"before the backup"
    _run(ctx, "delete", clone)

    retired = params["retired_database"]
    assert set(restores.retired_databases(ctx, spec)) == {retired, params["files_retired"]}
    _run(ctx, "delete", spec)  # the retired database and files go with the tenant
    dsn = ctx.settings.platform_db_admin_dsn
    assert dsn is not None
    with psycopg.connect(dsn.get_secret_value()) as conn:
        left = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'osp_angers%'")
        assert left.fetchall() == []
    assert k.get(f"/api/v1/namespaces/{ns}") is None
    assert bucket not in {b["Name"] for b in s3.client().list_buckets()["Buckets"]}
