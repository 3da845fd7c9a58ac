"""Finding what a command names: tenants by slug, operations and backups by id or prefix.

Every command that takes an id accepts a unique prefix of it and says on stderr which id
it matched; an ambiguous prefix lists the candidates (exit 2). A slug or id that names
nothing is NotFoundError (exit 3) with a ``did you mean`` hint from the known ones.
"""

from __future__ import annotations

from osp_ops.backups import list_backups
from osp_ops.cli.output import err_console
from osp_ops.domain.display import match_id, suggest
from osp_ops.domain.errors import NotFoundError
from osp_ops.engine.backup_access import store_for
from osp_ops.engine.context import Context
from osp_ops.store.backups import Backups
from osp_ops.store.operations import OperationInfo


def known_slugs(ctx: Context) -> set[str]:
    """Every tenant osp-ops knows of: spec files and state DB records."""
    files = {p.stem for p in ctx.settings.tenants_dir.glob("*.yaml")}
    return files | {r.slug for r in ctx.tenants.list()}


def unknown_tenant(ctx: Context, slug: str) -> NotFoundError:
    """The error of a slug no spec file or record has, with the closest known slugs."""
    hint = suggest(slug, known_slugs(ctx) - {slug})
    return NotFoundError(
        f"no tenant {slug!r}",
        hint=hint or f"`osp-ops tenant list` shows the tenants; `osp-ops tenant create {slug}`",
    )


def require_tenant(ctx: Context, slug: str) -> None:
    """NotFoundError (with suggestions) unless ``slug`` has a spec file or a record."""
    if not ctx.specs.exists(slug) and ctx.tenants.get(slug) is None:
        raise unknown_tenant(ctx, slug)


def _say_matched(what: str, given: str, full: str) -> None:
    if given != full:
        err_console.print(f"{what} {full} (matched {given!r})", markup=False, soft_wrap=True)


def operation(ctx: Context, given: str) -> OperationInfo:
    """The operation ``given`` is the id or a unique prefix of."""
    ids = ctx.operations.ids(prefix=given) or ctx.operations.ids()
    full = match_id(given, ids, what="operation")
    _say_matched("operation", given, full)
    return ctx.operations.get(full)


def backup_id(ctx: Context, slug: str, given: str | None) -> str | None:
    """The id of ``slug``'s backup that ``given`` is the id or a unique prefix of (None
    stays None: the command's default backup)."""
    if given is None:
        return None
    found = {i.backup_id for i in list_backups(store_for(ctx), slug)}
    found |= {b.id for b in Backups(ctx.db).for_tenant(slug)}
    if not found:
        require_tenant(ctx, slug)
    full = match_id(given, found, what="backup", where=f"of tenant {slug!r}")
    _say_matched("backup", given, full)
    return full
