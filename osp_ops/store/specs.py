"""Tenant spec files: ``tenants/<slug>.yaml``, one per municipality, reviewed in git."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Collection
from pathlib import Path

from osp_ops.domain.catalog import Catalog
from osp_ops.domain.display import suggest
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
            known = [p.stem for p in self.directory.glob("*.yaml") if p.stem != slug]
            raise NotFoundError(
                f"no tenant {slug!r}: no spec file {path}",
                hint=suggest(slug, known) or f"create it with `osp-ops tenant create {slug}`",
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

    def load_each(self) -> tuple[dict[str, TenantSpec], dict[str, list[Problem]]]:
        """Every spec file on its own: the valid specs and the problems of the others, by
        file name (slug). A file that collides with an earlier one (slug or host name,
        files in name order) is one with problems; one bad file never hides the others."""
        specs: dict[str, TenantSpec] = {}
        problems: dict[str, list[Problem]] = {}
        for path in sorted(self.directory.glob("*.yaml")):
            try:
                specs[path.stem] = parse_spec(
                    path.read_text("utf-8"),
                    source=str(path),
                    expected_slug=path.stem,
                    catalog=self.catalog,
                )
            except SpecError as e:
                problems[path.stem] = e.problems
        by_source = {str(self.path(slug)): spec for slug, spec in specs.items()}
        for problem in check_fleet(by_source):
            for slug in list(specs):
                if problem.location.startswith(f"{self.path(slug)}:"):
                    problems.setdefault(slug, []).append(problem)
                    del specs[slug]
        return specs, problems

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

    def write(self, spec: TenantSpec, *, keep: Collection[str] = ()) -> Path:
        """Write a spec file atomically (``keep``: top-level fields written even at their
        defaults)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.path(spec.slug)
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=f".{spec.slug}.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(f"# Tenant spec of {spec.name}. Reference: docs/tenant-spec.md\n")
            f.write(dump_spec(spec, keep=keep))
        os.replace(tmp, path)
        return path
