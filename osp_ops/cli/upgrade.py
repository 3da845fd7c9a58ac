"""`osp-ops upgrade ...`: plan and run upgrades along the catalog's allowed path."""

from __future__ import annotations

from typing import Annotated

import typer

from osp_ops.cli.common import context, queued, run_inline, slug_argument, verbosity
from osp_ops.cli.lookup import require_tenant
from osp_ops.cli.output import console, print_json, table
from osp_ops.cli.task_runs import print_task_runs, task_runs
from osp_ops.domain.error_text import one_line
from osp_ops.domain.errors import (
    NotFoundError,
    OspOpsError,
    Problem,
    RolledBackError,
    SpecError,
)
from osp_ops.engine import interrupted
from osp_ops.engine.api import request_upgrade
from osp_ops.engine.context import Context
from osp_ops.engine.kinds import rollback
from osp_ops.engine.kinds.upgrade import UpgradePlan, plan
from osp_ops.engine.upgrade_plan import FleetPlan, plan_fleet
from osp_ops.store.db import utcnow

app = typer.Typer(help="App upgrades, one allowed version at a time.", no_args_is_help=True)


def _fleet(c: typer.Context) -> FleetPlan:
    return plan_fleet(context(c), utcnow())


def _path(p: UpgradePlan) -> str:
    if p.current is None:
        return "not deployed"
    return " → ".join((p.current, *p.path)) if p.path else "up to date"


def _print_tasks(plans: list[UpgradePlan]) -> None:
    """Each hop's one-time tasks, under the table."""
    for p in plans:
        for hop in p.hops:
            if not hop.tasks:
                continue
            console.print(f"{p.tenant} {hop.origin} → {hop.version}:", markup=False)
            for t in hop.tasks:
                once = "" if t.rerunnable else " (not rerunnable)"
                line = f"  {' '.join(t.command)}  [{t.version}] {t.description}{once}"
                console.print(line, markup=False, soft_wrap=True)  # a command stays whole


@app.command("plan")
def plan_(
    c: typer.Context,
    json_: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """For each tenant: running version, spec version, every version between with each
    hop's one-time tasks, its window. A tenant whose spec is invalid, or whose path the
    catalog refuses, is listed with its error; the others are planned all the same."""
    fleet = _fleet(c)
    if json_:
        print_json(fleet.to_json())
        return
    rows = [
        [
            p.tenant,
            p.app,
            p.current or "not deployed",
            p.target,
            _path(p),
            "open now" if p.window_open else f"next {p.next_window:%a %Y-%m-%d %H:%M %Z}",
        ]
        for p in fleet.plans
    ]
    rows += [[r.tenant, "", "", "", f"refused: {r.error}", ""] for r in fleet.refused]
    rows.sort(key=lambda r: r[0])
    table(None, ["TENANT", "APP", "RUNNING", "SPEC", "PATH", "WINDOW"], rows)
    _print_tasks(fleet.plans)


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
    verbose: Annotated[
        int,
        typer.Option(
            "--verbose", "-v", count=True, help="Show every platform task (-vv: skipped ones too)."
        ),
    ] = 0,
) -> None:
    """Upgrade to the spec's version: back up, then deploy, migrate and check each version.
    When a step after the backup fails, the upgrade rolls back by itself to the version
    the tenant ran, with the backup's data (exit 8: rolled back). `--all` skips a tenant
    whose last upgrade to the same version was rolled back (name it to try again)."""
    if all_ == (slug is not None):
        raise SpecError([Problem("arguments", "give a tenant slug or --all")], subject="command")
    ctx = context(c)
    if slug is not None:
        require_tenant(ctx, slug)
    fleet = _fleet(c)
    if all_ and not fleet.plans and not fleet.refused:  # a scheduled run says it found nothing
        raise NotFoundError(
            f"no tenant spec in {ctx.settings.tenants_dir} (tenants_dir): nothing to do"
        )
    if slug is not None:
        refusal = fleet.refusal(slug)
        if refusal is not None:  # the one tenant asked for cannot be planned: say why
            plan(ctx, ctx.specs.load(slug), utcnow())  # its own SpecError or CatalogError
            raise SpecError([Problem(slug, refusal.error)], subject="upgrade")  # a collision
        if not any(p.tenant == slug for p in fleet.plans):
            ctx.specs.load(slug)  # NotFoundError naming the missing spec file
    skipped = fleet.refused if all_ else []
    for r in skipped:
        console.print(f"{r.tenant}: skipped: {r.error}", style="red", markup=False)
    todo = [p for p in fleet.plans if p.needed and (all_ or p.tenant == slug)]
    if in_window:
        todo = [p for p in todo if p.window_open]
    failed: list[Problem] = []
    if all_:  # a hop that was rolled back is not tried again unasked (as Frappe Press)
        for p in [p for p in todo if rollback.rolled_back_before(ctx, p.tenant, p.target)]:
            why = (
                f"skipped: its last upgrade {p.current} → {p.target} was rolled back; "
                f"`osp-ops upgrade run {p.tenant}` tries again"
            )
            console.print(f"{p.tenant}: {why}", style="red", markup=False)
            failed.append(Problem(p.tenant, why))
            todo.remove(p)
    for p in todo:
        try:
            spec = ctx.specs.load(p.tenant)
            op, created = request_upgrade(ctx, spec)
            if async_:
                queued(op, created)
                continue
            result = run_inline(ctx, op, created=created, wait=wait, verbose=verbosity(c, verbose))
        except OspOpsError as e:
            if not all_:
                raise
            # One tenant's failure is recorded with its operation; the others still run.
            console.print(f"{p.tenant}: upgrade failed: {e}", style="red", markup=False)
            failed.append(Problem(p.tenant, str(e)))
            continue
        console.print(f"[green]upgrade {p.tenant}: {result.status} ({p.current} → {p.target})[/]")
    if not todo and not skipped and not failed:
        console.print("nothing to upgrade")
    # A scheduled --all run must not look clean when a tenant was left out.
    left_out = [Problem(r.tenant, f"skipped: {r.error}") for r in skipped] + failed
    if failed:
        raise OspOpsError("; ".join(str(p) for p in left_out))
    if left_out:
        raise SpecError(left_out, subject="upgrade of some tenants")


@app.command()
def recover(
    c: typer.Context,
    slug: Annotated[str, slug_argument("Tenant.")],
    wait: Annotated[float, typer.Option(help="Seconds to wait for a busy tenant.")] = 0.0,
) -> None:
    """Retry the rollback of the tenant's last upgrade when even the rollback failed (its
    maintenance page stays up until then), or resume an upgrade whose runner died (it
    rolls back when it was past its point of no return)."""
    ctx = context(c)
    require_tenant(ctx, slug)
    last = rollback.last_upgrade(ctx, slug)
    op = rollback.recoverable(
        ctx, slug, interrupted=last is not None and interrupted.is_interrupted(ctx, last)
    )
    ctx.audit.append(
        actor=ctx.actor, action="upgrade.recover", tenant=slug, details={"operation": op.id}
    )
    try:
        result = run_inline(ctx, op, created=False, wait=wait, verbose=verbosity(c))
    except RolledBackError:  # what recover is for: the tenant is back on its old version
        done = ctx.operations.get(op.id)
        version = ctx.tenants.require(slug).observed_version
        console.print(f"[green]upgrade {slug}: rolled back to {version} ({done.id})[/]")
        console.print(f"what failed: {done.error}", markup=False, soft_wrap=True)
        return
    console.print(f"[green]upgrade {slug}: {result.status}[/]")


def _upgrades(ctx: Context, slug: str) -> list[dict[str, object]]:
    """The tenant's upgrade operations, newest first, with their state and what failed."""
    rows: list[dict[str, object]] = []
    for op in ctx.operations.recent(tenant=slug, limit=100):
        if op.kind != "upgrade":
            continue
        failed = next(
            (s for s in op.steps if s.status == "failed" and s.name not in rollback.ROLLBACK_STEPS),
            None,
        )
        rows.append(
            {
                "operation": op.id,
                "created_at": op.created_at.isoformat(),
                "from": op.params.get("from"),
                "to": op.params.get("spec", {}).get("app", {}).get("version"),
                "state": rollback.state(op, interrupted=interrupted.is_interrupted(ctx, op)),
                "failed_step": failed.name if failed else None,
                "error": op.error,
                "rollback": [
                    {"step": s.name, "status": s.status, "output": s.output, "error": s.error}
                    for s in op.steps
                    if s.name in rollback.ROLLBACK_STEPS
                ],
            }
        )
    return rows


@app.command()
def history(
    c: typer.Context,
    slug: Annotated[str, slug_argument("Tenant.")],
    json_: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """The tenant's upgrades, newest first (state: upgrading, rolling-back, rolled-back,
    succeeded, failed; the step that failed and why), then every one-time task run: hop,
    command, status, time and output (the last line; all of it with --json)."""
    ctx = context(c)
    require_tenant(ctx, slug)
    upgrades = _upgrades(ctx, slug)
    runs = task_runs(ctx, slug)
    if json_:
        print_json({"tenant": slug, "upgrades": upgrades, "task_runs": [r.to_json() for r in runs]})
        return
    if upgrades:
        table(
            "Upgrades",
            ["CREATED (UTC)", "OPERATION", "FROM", "TO", "STATE", "FAILED STEP", "ERROR"],
            [
                [
                    str(u["created_at"])[:16].replace("T", " "),
                    u["operation"],
                    u["from"],
                    u["to"],
                    u["state"],
                    u["failed_step"] or "",
                    one_line(str(u["error"])) if u["error"] else "",
                ]
                for u in upgrades
            ],
        )
    print_task_runs("Task runs" if upgrades else None, runs)
