"""Decidim on hosts: where no container registry is reachable, deploy fails clearly."""

from __future__ import annotations

import shutil

import pytest

from osp_ops.domain.catalog import default_catalog
from osp_ops.domain.errors import PlatformError
from osp_ops.platforms.hosts import HostsPlatform
from osp_ops.settings import Settings
from tests.factories import make_spec
from tests.fixtures.procs import free_port
from tests.hosts.helpers import Recorder, make_secrets, new_host_base, stop_supervisord

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


def test_unpullable_image_fails_with_a_clear_message() -> None:
    base = new_host_base("osp-d-")  # short: supervisord's socket lives under it
    root = base / "root"
    settings = Settings(data_dir=base / "data", host_root=str(root),
                        http_port=free_port(), https_port=free_port())  # fmt: skip
    platform = HostsPlatform(settings=settings, catalog=default_catalog(),
                             local_vars={"osp_postgresql_port": free_port()})  # fmt: skip
    spec = make_spec("grenoble", version="0.28.5", host="grenoble.localhost",
                     admin_name="Admin Grenoble")  # fmt: skip
    runtime = shutil.which("podman") or shutil.which("docker")
    expected = (
        r"cannot pull image ghcr\.io/decidim/decidim:0\.28\.5: is the registry reachable\?"
        if runtime
        else "needs podman or docker"
    )
    try:
        with pytest.raises(PlatformError, match=expected) as e:
            platform.deploy(spec=spec, version="0.28.5", secrets=make_secrets("grenoble"),
                            reporter=Recorder())  # fmt: skip
        assert "localhost" in str(e.value)
    finally:
        stop_supervisord(root)
        shutil.rmtree(base, ignore_errors=True)
