"""Tenant spec files: ``tenants/<slug>.yaml``, one per municipality, reviewed in git."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from osp_ops.domain.catalog import Catalog
from osp_ops.domain.errors import NotFoundError, Problem, SpecError
from osp_ops.domain.spec import TenantSpec, check_fleet, dump_spec, parse_spec


class SpecRepository:
    """Reads and writes the spec files in one directory."""

    def __init__(self, directory: Path, catalog: Catalog) -> None:
        self.directory = directory
        self.catalog = catalog

    def path(self, slug: str) -> Path:
        """Where a tenant's spec file lives."""
        return self.directory / f"{slug}.yaml"

    def exists(self, slug: str) -> bool:
        """True when the tenant has a spec file."""
        return self.path(slug).exists()

    def load(self, slug: str) -> TenantSpec:
        """Parse one spec file (its slug must match the file name)."""
        path = self.path(slug)
        try:
            text = path.read_text("utf-8")
        except FileNotFoundError:
            raise NotFoundError(
                f"no spec file {path} (create it with `osp-ops tenant create {slug} ...`)"
            ) from None
        return parse_spec(text, source=str(path), expected_slug=slug, catalog=self.catalog)

    def load_all(self) -> dict[str, TenantSpec]:
        """Every spec file, validated together: every problem of every file at once."""
        problems: list[Problem] = []
        specs: dict[str, TenantSpec] = {}
        for path in sorted(self.directory.glob("*.yaml")):
            try:
                specs[str(path)] = parse_spec(
                    path.read_text("utf-8"),
                    source=str(path),
                    expected_slug=path.stem,
                    catalog=self.catalog,
                )
            except SpecError as e:
                problems.extend(e.problems)
        problems.extend(check_fleet(specs))
        if problems:
            raise SpecError(problems)
        return specs

    def check_against_fleet(self, spec: TenantSpec) -> None:
        """SpecError if ``spec`` collides with another tenant's slug or host names."""
        others = {}
        for path in sorted(self.directory.glob("*.yaml")):
            if path.stem == spec.slug:
                continue
            try:
                others[str(path)] = parse_spec(
                    path.read_text("utf-8"), source=str(path), catalog=self.catalog
                )
            except SpecError:
                continue  # a broken neighbour is reported by `tenant validate`, not here
        problems = [
            p
            for p in check_fleet({**others, str(self.path(spec.slug)): spec})
            if p.location.startswith(str(self.path(spec.slug)))
        ]
        if problems:
            raise SpecError(problems)

    def write(self, spec: TenantSpec) -> Path:
        """Write a spec file atomically."""
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.path(spec.slug)
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=f".{spec.slug}.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(f"# Tenant spec of {spec.name}. Reference: docs/tenant-spec.md\n")
            f.write(dump_spec(spec))
        os.replace(tmp, path)
        return path
