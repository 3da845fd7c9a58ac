"""HostsPlatform(ansible_settings=…): Ansible settings only, as ANSIBLE_* variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from osp_ops.domain.catalog import default_catalog
from osp_ops.domain.errors import ConfigError
from osp_ops.platforms.hosts import HostsPlatform
from osp_ops.settings import Settings

pytestmark = pytest.mark.unit


def test_ansible_settings_are_kept(tmp_path: Path) -> None:
    p = HostsPlatform(settings=Settings(data_dir=tmp_path), catalog=default_catalog(),
                      ansible_settings={"ANSIBLE_PIPELINING": "0"})  # fmt: skip
    assert p.ansible_settings == {"ANSIBLE_PIPELINING": "0"}


def test_other_environment_variables_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"ANSIBLE_\* variables, not LD_PRELOAD, PATH$"):
        HostsPlatform(settings=Settings(data_dir=tmp_path), catalog=default_catalog(),
                      ansible_settings={"PATH": "/tmp", "LD_PRELOAD": "x"})  # fmt: skip
