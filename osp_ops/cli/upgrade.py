"""`osp-ops upgrade ...`: plan and run upgrades along the catalog's allowed path."""

from __future__ import annotations

from typing import Annotated

import typer

from osp_ops.cli.common import context, queued, run_inline, slug_argument
from osp_ops.cli.lookup import require_tenant
from osp_ops.cli.output import console, print_json, table
from osp_ops.domain.errors import CatalogError, NotFoundError, Problem, SpecError
from osp_ops.engine.api import request_upgrade
from osp_ops.engine.upgrade import UpgradePlan, plan
from osp_ops.store.db import utcnow

app = typer.Typer(help="App upgrades, one allowed version at a time.", no_args_is_help=True)


def _plans(c: typer.Context) -> tuple[list[UpgradePlan], list[tuple[str, str]]]:
    ctx = context(c)
    now = utcnow()
    plans, refused = [], []
    for spec in ctx.specs.load_all().values():
        try:
            plans.append(plan(ctx, spec, now))
        except CatalogError as e:
            refused.append((spec.slug, str(e)))
    return plans, refused


@app.command("plan")
def plan_(
    c: typer.Context,
    json_: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """For each tenant: running version, spec version, the path between, its window."""
    plans, refused = _plans(c)
    if json_:
        print_json(
            {
                "plans": [p.to_json() for p in plans],
                "refused": [{"tenant": t, "error": e} for t, e in refused],
            }
        )
        return
    table(
        None,
        ["TENANT", "APP", "RUNNING", "SPEC", "PATH", "WINDOW"],
        [
            [
                p.tenant,
                p.app,
                p.current or "not deployed",
                p.target,
                " → ".join(p.path) if p.path else "up to date",
                "open now" if p.window_open else f"next {p.next_window:%a %Y-%m-%d %H:%M %Z}",
            ]
            for p in plans
        ],
    )
    for tenant, error in refused:
        console.print(f"[red]{tenant}: {error}[/]")


@app.command()
def run(
    c: typer.Context,
    slug: Annotated[str | None, slug_argument("Tenant; every due one with --all.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every tenant whose spec is ahead.")] = False,
    in_window: Annotated[
        bool, typer.Option("--in-window", help="Only tenants whose maintenance window is open.")
    ] = False,
    async_: Annotated[bool, typer.Option("--async", help="Queue for a worker.")] = False,
    wait: Annotated[float, typer.Option(help="Seconds to wait for a busy tenant.")] = 0.0,
) -> None:
    """Upgrade to the spec's version: back up, then deploy, migrate and check each version."""
    if all_ == (slug is not None):
        raise SpecError([Problem("arguments", "give a tenant slug or --all")], subject="command")
    ctx = context(c)
    if slug is not None:
        require_tenant(ctx, slug)
    plans, refused = _plans(c)
    if all_ and not plans and not refused:  # a scheduled run that finds nothing says so
        raise NotFoundError(
            f"no tenant spec in {ctx.settings.tenants_dir} (tenants_dir): nothing to do"
        )
    for tenant, error in refused:
        if all_ or tenant == slug:
            console.print(f"[red]{tenant}: {error}[/]")
    todo = [p for p in plans if p.needed and (all_ or p.tenant == slug)]
    if in_window:
        todo = [p for p in todo if p.window_open]
    if not todo:
        console.print("nothing to upgrade")
        return
    for p in todo:
        spec = ctx.specs.load(p.tenant)
        op, created = request_upgrade(ctx, spec)
        if async_:
            queued(op, created)
            continue
        result = run_inline(ctx, op, created=created, wait=wait)
        console.print(f"[green]upgrade {p.tenant}: {result.status} ({p.current} → {p.target})[/]")
