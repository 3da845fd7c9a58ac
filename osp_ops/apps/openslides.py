"""OpenSlides 3.x: a Django/Channels app in a virtualenv on hosts (no chart)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from osp_ops.apps.base import AppProfile, LoginCheck
from osp_ops.domain.catalog import default_catalog


class OpenSlidesProfile(AppProfile):
    """OpenSlides: files under ``data/media``, owned by the tenant's Unix user."""

    name = "openslides"
    default = True

    def version_from(self, body: Any) -> str | None:
        """``/apps/core/version/`` answers ``{"openslides_version": ...}``."""
        if isinstance(body, Mapping):
            v = body.get("openslides_version") or body.get("version")
            return str(v) if v else None
        return None

    @property
    def personal_data(self) -> Mapping[str, tuple[str, ...]]:
        """OpenSlides 3's user table."""
        return {
            "users_user": (
                "username", "first_name", "last_name", "email", "title",
                "structure_level", "number", "about_me", "comment",
            ),
        }  # fmt: skip

    def login_check(self, username: str, password: str) -> LoginCheck:
        """POST the login path with JSON, as the OpenSlides client does (200 when right)."""
        return LoginCheck(
            method="POST",
            path=self.app.login_path,
            json={"username": username, "password": password},
            ok_status=200,
        )


def profile() -> OpenSlidesProfile:
    """The entry point of ``osp_ops.apps``: OpenSlides with its shipped catalog entry."""
    return OpenSlidesProfile(default_catalog().app("openslides"))
