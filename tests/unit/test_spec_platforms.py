"""A spec no platform can run is invalid at validation, naming the field: an app of a
kind its platform does not run (OpenSlides, a Python app, on Kubernetes)."""

from __future__ import annotations

import pytest

from osp_ops.domain.catalog import PLATFORM_APP_KINDS, default_catalog
from osp_ops.domain.errors import SpecError
from osp_ops.domain.spec import validate_spec
from tests.factories import spec_data

pytestmark = pytest.mark.unit

CATALOG = default_catalog()


def _data(app: str, platform: str) -> dict[str, object]:
    version = CATALOG.apps[app].latest.version
    return spec_data(
        "lyon", app=app, version=version, admin_name="A", admin_email="a@lyon.example.org",
        platform=platform,
    )  # fmt: skip


def test_openslides_on_kubernetes_is_invalid_naming_platform_kind() -> None:
    with pytest.raises(SpecError) as e:
        validate_spec(_data("openslides", "kubernetes"), source="lyon.yaml")
    [problem] = e.value.problems
    assert problem.location == "lyon.yaml: platform.kind"
    assert "OpenSlides is a python app" in problem.message
    assert "use platform hosts, or app decidim on kubernetes" in problem.message


RUNNABLE = [
    (app, platform)
    for app in sorted(CATALOG.apps)
    for platform in sorted(PLATFORM_APP_KINDS)
    if CATALOG.apps[app].kind in PLATFORM_APP_KINDS[platform]
]


def test_decidim_runs_on_both_platforms_and_openslides_on_hosts() -> None:
    assert RUNNABLE == [("decidim", "hosts"), ("decidim", "kubernetes"), ("openslides", "hosts")]


@pytest.mark.parametrize(("app", "platform"), RUNNABLE)
def test_every_runnable_pair_is_valid(app: str, platform: str) -> None:
    assert validate_spec(_data(app, platform)).platform.kind == platform
