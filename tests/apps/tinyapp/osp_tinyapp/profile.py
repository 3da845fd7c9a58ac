"""TinyApp's app profile: the catalog entry beside it, its own role, nothing to install."""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from pathlib import Path

import yaml

from osp_ops.apps.base import AppProfile
from osp_ops.domain.catalog import App


class TinyAppProfile(AppProfile):
    """TinyApp: files under ``data/files``, owned by the tenant's Unix user."""

    name = "tinyapp"

    def requirements(self, version: str) -> tuple[str, str]:
        """TinyApp is one stdlib script: no package set."""
        return "", ""

    @property
    def roles_dir(self) -> Path:
        """``roles/app_tinyapp`` ships in this package."""
        return Path(__file__).resolve().parent / "roles"

    @property
    def personal_data(self) -> Mapping[str, tuple[str, ...]]:
        """The administrators' e-mail addresses."""
        return {"tinyapp_admins": ("email",)}


def profile() -> TinyAppProfile:
    """The entry point of ``osp_ops.apps``."""
    text = resources.files("osp_tinyapp").joinpath("catalog.yaml").read_text("utf-8")
    return TinyAppProfile(App.model_validate(yaml.safe_load(text)))
