"""Chart values of ``app_storage``: the tenant's bucket, which the overlay cannot change."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from osp_ops.apps.charts import helm_values
from osp_ops.domain.catalog import default_catalog
from osp_ops.settings import Settings
from tests.factories import kube_spec

pytestmark = pytest.mark.unit

SPEC = kube_spec("angers")


def _values(settings: Settings, overlay: dict[str, Any] | None = None) -> dict[str, Any]:
    return helm_values(
        SPEC,
        version="0.28.4",
        catalog=default_catalog(),
        settings=settings,
        db_cidr="10.0.0.5/32",
        overlay=overlay,
        s3_egress=[{"cidr": "10.0.0.9/32", "ports": [9000]}],
    )


def test_volume_mode_leaves_storage_to_the_chart_and_overlay(tmp_path: Path) -> None:
    values = _values(Settings(data_dir=tmp_path))
    assert "storage" not in values
    overlay = {"storage": {"pvc": {"storageClass": "longhorn"}}}
    assert _values(Settings(data_dir=tmp_path), overlay)["storage"] == overlay["storage"]


def test_s3_mode_gives_the_tenant_its_bucket(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        app_storage="s3",
        app_s3_endpoint_url="http://minio.local:9000",
        app_s3_pod_endpoint_url="http://minio.storage.svc:9000",
        app_s3_access_key_id="key",
        app_s3_secret_access_key=SecretStr("secret-value"),
        app_s3_bucket_prefix="ville-",
    )
    values = _values(settings)
    assert values["storage"] == {
        "type": "s3",
        "s3": {
            "bucket": "ville-angers",
            "endpoint": "http://minio.storage.svc:9000",
            "region": "us-east-1",
            "forcePathStyle": True,
        },
    }
    assert values["networkPolicy"]["egress"]["s3"] == [{"cidr": "10.0.0.9/32", "ports": [9000]}]
    assert "secret-value" not in repr(values)  # keys go to the Secret, never the values
    # The overlay may not point the tenant at another bucket; it may list egress itself.
    overlay = {
        "storage": {"type": "pvc", "s3": {"bucket": "other"}},
        "networkPolicy": {"egress": {"s3": [{"cidr": "52.0.0.0/8", "ports": [443]}]}},
    }
    merged = _values(settings, overlay)
    assert merged["storage"]["type"] == "s3" and merged["storage"]["s3"]["bucket"] == "ville-angers"
    assert merged["networkPolicy"]["egress"]["s3"] == [{"cidr": "52.0.0.0/8", "ports": [443]}]
