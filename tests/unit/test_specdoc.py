"""docs/tenant-spec.md is generated from the TenantSpec model and kept current."""

from __future__ import annotations

from pathlib import Path

import pytest

from osp_ops.domain.spec import TenantSpec
from osp_ops.domain.specdoc import spec_markdown

pytestmark = pytest.mark.unit

DOC = Path(__file__).resolve().parents[2] / "docs" / "tenant-spec.md"
REGENERATE = "osp-ops tenant schema --markdown > docs/tenant-spec.md"


def test_doc_is_current() -> None:
    assert DOC.read_text("utf-8") == spec_markdown(), (
        f"docs/tenant-spec.md is stale: run `{REGENERATE}`"
    )


def test_every_field_of_every_section_is_documented() -> None:
    text = spec_markdown()
    schema = TenantSpec.model_json_schema()
    sections = {"TenantSpec (top level)": schema, **schema["$defs"]}
    for title, section in sections.items():
        assert f"## {title}" in text
        body = text.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]
        for field in section.get("properties", {}):
            assert f"| `{field}` |" in body, (title, field)
        for value in section.get("enum", []):
            assert f"`{value}`" in body, (title, value)


def test_defaults_and_required_come_from_the_model() -> None:
    text = spec_markdown()
    assert "| `slug` | string |  | yes |" in text
    assert '| `locales` | Locales | `{"default": "fr", "available": ["fr"]}` |  |' in text
    assert "| `time_zone` | string | `Europe/Paris` |" in text
