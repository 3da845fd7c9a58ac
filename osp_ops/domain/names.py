"""Names osp-ops derives from a tenant's slug (pure)."""

from __future__ import annotations


def db_name_for(slug: str) -> str:
    """Role and database name of a tenant: ``osp_<slug>``, dashes as underscores."""
    return "osp_" + slug.replace("-", "_")
