"""Kubernetes tenants never adopt or delete a namespace osp-ops did not create for them:
the namespace carries the ownership mark ``osp-ops.io/owner: osp-ops tenant <slug> <id>``
(run as the operator's ServiceAccount against the test control plane)."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from osp_ops.domain.errors import PlatformError
from osp_ops.domain.names import db_name_for
from osp_ops.platforms.base import null_reporter
from osp_ops.platforms.kubernetes import KubernetesPlatform
from tests.factories import kube_spec
from tests.fixtures.k8s_operator import admin
from tests.fixtures.kube import KubeCluster
from tests.fixtures.postgres import PostgresServer

pytestmark = pytest.mark.k8s

SECRETS = {"db_password": "pw-one", "secret_key": "sk-" + "x" * 60, "admin_password": "adm"}


def _namespace(kube: KubeCluster, name: str) -> Any:
    return admin(kube).get(f"/api/v1/namespaces/{name}")


def _database_exists(postgres: PostgresServer, slug: str) -> bool:
    with psycopg.connect(postgres.dsn) as conn:
        row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db_name_for(slug),))
        return row.fetchone() is not None


def test_a_namespace_osp_ops_did_not_create_is_neither_adopted_nor_deleted(
    kube: KubeCluster, platform: KubernetesPlatform, postgres: PostgresServer
) -> None:
    # Like osp-ops-system: created by someone else, here even labelled as the tenant's.
    admin(kube).apply(
        {"apiVersion": "v1", "kind": "Namespace",
         "metadata": {"name": "osp-ghent", "labels": {"osp-ops.io/tenant": "ghent"}}},
        force=True,
    )  # fmt: skip
    before = _namespace(kube, "osp-ghent")["metadata"]
    spec = kube_spec("ghent")
    with pytest.raises(PlatformError, match="refusing to adopt it"):
        platform.provision(spec=spec, secrets=SECRETS, reporter=null_reporter, tenant_id="id-g")
    with pytest.raises(PlatformError, match="not deleting it"):
        platform.destroy(spec=spec, reporter=null_reporter, tenant_id="id-g")
    with pytest.raises(PlatformError, match="not deleting it"):
        platform.destroy(spec=spec, reporter=null_reporter)
    after = _namespace(kube, "osp-ghent")["metadata"]
    assert (after["labels"], after.get("annotations")) == (
        before["labels"],
        before.get("annotations"),
    )
    assert not _database_exists(postgres, "ghent")


def test_the_namespace_of_another_tenant_id_is_refused(
    kube: KubeCluster, platform: KubernetesPlatform, postgres: PostgresServer
) -> None:
    spec = kube_spec("ypres")
    platform.provision(spec=spec, secrets=SECRETS, reporter=null_reporter, tenant_id="id-1")
    meta = _namespace(kube, "osp-ypres")["metadata"]
    assert meta["annotations"]["osp-ops.io/owner"] == "osp-ops tenant ypres id-1"
    with pytest.raises(PlatformError, match="refusing to adopt it"):
        platform.provision(spec=spec, secrets=SECRETS, reporter=null_reporter, tenant_id="id-2")
    with pytest.raises(PlatformError, match="not deleting it"):
        platform.destroy(spec=spec, reporter=null_reporter, tenant_id="id-2")
    assert _namespace(kube, "osp-ypres") is not None and _database_exists(postgres, "ypres")
    assert platform.destroy(spec=spec, reporter=null_reporter, tenant_id="id-1").changed == 2
    assert _namespace(kube, "osp-ypres") is None and not _database_exists(postgres, "ypres")
