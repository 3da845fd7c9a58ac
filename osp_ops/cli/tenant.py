"""`osp-ops tenant ...`: create, list, show, apply, suspend, resume, delete, schema."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.markup import escape

from osp_ops.cli.common import context, queued, run_inline, slug_argument, verbosity
from osp_ops.cli.drills import last_drill, summary
from osp_ops.cli.lookup import unknown_tenant
from osp_ops.cli.output import console, print_json, table
from osp_ops.cli.render import render
from osp_ops.cli.task_runs import print_task_runs, task_runs
from osp_ops.cli.tenant_flags import defaults_used, spec_from_flags
from osp_ops.domain.deletion import expiry
from osp_ops.domain.display import utc
from osp_ops.domain.error_text import one_line
from osp_ops.domain.errors import Problem, SpecError, TenantDeletedError
from osp_ops.domain.phases import Phase
from osp_ops.domain.spec import TenantSpec
from osp_ops.domain.specdoc import spec_markdown
from osp_ops.engine import interrupted
from osp_ops.engine.api import request, request_converge
from osp_ops.engine.deletion import delete_params
from osp_ops.engine.health import tenant_health
from osp_ops.engine.recovery import recovery_warning

app = typer.Typer(help="Municipalities' instances.", no_args_is_help=True)
app.command()(render)

AsyncOpt = Annotated[
    bool, typer.Option("--async", help="Queue for a worker instead of running here.")
]
WaitOpt = Annotated[float, typer.Option("--wait", help="Seconds to wait for a busy tenant.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
VerboseOpt = Annotated[
    int,
    typer.Option(
        "--verbose", "-v", count=True, help="Show every platform task (-vv: skipped ones too)."
    ),
]
SlugArg = Annotated[str, slug_argument()]


def _finish(
    c: typer.Context,
    kind: str | None,
    spec: TenantSpec,
    async_: bool,
    wait: float,
    verbose: int,
    *,
    reuse_deleted: bool = False,
    params: dict[str, object] | None = None,
) -> None:
    """Request ``kind`` (None: whatever converges the tenant) and run it here or queue it."""
    ctx = context(c)
    if kind is None:
        op, created = request_converge(ctx, spec, reuse_deleted=reuse_deleted)
    else:
        op, created = request(ctx, kind, spec, params=params)
    if async_:
        queued(op, created)
        return
    result = run_inline(ctx, op, created=created, wait=wait, verbose=verbosity(c, verbose))
    console.print(f"[green]{result.kind} {spec.slug}: {result.status}[/]")
    if result.kind in ("create", "apply", "upgrade", "resume"):
        _print_access(c, spec, advice=result.kind == "create")


def _print_access(c: typer.Context, spec: TenantSpec, *, advice: bool) -> None:
    """The URL and how to log in; how to trust the local CA once, after the create."""
    ctx = context(c)
    health = ctx.platform(spec).health(spec=spec)
    console.print(f"URL: [bold]{health.url}[/]")
    ca = ctx.settings.data_dir / "ca" / "ca.crt"
    if advice and ca.exists():
        console.print(
            f"TLS: certificates come from the local CA {ca}; trust it with\n"
            f"  curl --cacert {ca} {health.url}\n"
            f"  or: cp {ca} /usr/local/share/ca-certificates/osp-ops.crt && "
            "update-ca-certificates",
            markup=False,
            soft_wrap=True,  # the commands stay copyable at any width
        )
    console.print(f"Admin credentials: osp-ops tenant credentials {spec.slug}")


@app.command()
def create(
    c: typer.Context,
    slug: Annotated[str, slug_argument("Tenant slug (DNS label), e.g. nanterre.")],
    app_name: Annotated[
        str | None, typer.Option("--app", help="App of the catalog (the default app if unset).")
    ] = None,
    version: Annotated[str | None, typer.Option(help="App version; the newest if unset.")] = None,
    name: Annotated[str | None, typer.Option("--name", help="Display name.")] = None,
    host: Annotated[
        str | None, typer.Option(help="Primary host name (default <slug>.<base_domain>).")
    ] = None,
    alias: Annotated[list[str] | None, typer.Option(help="Additional host name.")] = None,
    admin_name: Annotated[str | None, typer.Option(help="First administrator's name.")] = None,
    admin_email: Annotated[str | None, typer.Option(help="First administrator's email.")] = None,
    locale: Annotated[str | None, typer.Option(help="Default locale (fr if unset).")] = None,
    platform: Annotated[
        str | None, typer.Option(help="hosts or kubernetes (default: default_platform).")
    ] = None,
    target: Annotated[str | None, typer.Option(help="Inventory host/group (hosts).")] = None,
    plan: Annotated[str | None, typer.Option(help="small (the default), medium or large.")] = None,
    reuse_deleted: Annotated[
        bool, typer.Option("--reuse-deleted", help="Create a deleted tenant again.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    async_: AsyncOpt = False,
    wait: WaitOpt = 0.0,
    verbose: VerboseOpt = 0,
) -> None:
    """Create a tenant: write its spec file if there is none, then provision it. A
    deleted tenant comes back only with --reuse-deleted (new secrets, empty database)."""
    ctx = context(c)
    rec = ctx.tenants.get(slug)
    if rec is not None and rec.phase is Phase.deleted:
        if not reuse_deleted:
            raise TenantDeletedError(slug)
        if not yes:
            typer.confirm(
                f"{slug} was deleted. Create it again, with new secrets and an empty database?",
                abort=True,
            )
    flags = {
        k: v
        for k, v in dict(
            app=app_name,
            version=version,
            name=name,
            host=host,
            alias=alias,
            admin_name=admin_name,
            admin_email=admin_email,
            locale=locale,
            platform=platform,
            target=target,
            plan=plan,
        ).items()
        if v
    }
    if ctx.specs.exists(slug):
        spec = ctx.specs.load(slug)
        if flags:
            console.print(
                f"[yellow]{ctx.specs.path(slug)} exists; options "
                f"{', '.join('--' + k.replace('_', '-') for k in flags)} are ignored "
                "(edit the file and run `osp-ops tenant apply`)[/]"
            )
    else:
        spec = spec_from_flags(
            ctx.settings.base_domain, ctx.settings.default_platform, slug, flags, ctx.catalog
        )
        ctx.specs.check_against_fleet(spec)
        for what, value, option in defaults_used(spec, flags):
            console.print(
                f"using default {what} {value} (choose with {option})", markup=False, soft_wrap=True
            )
        path = ctx.specs.write(spec, keep=("platform", "plan", "locales"))
        console.print(f"wrote {path}")
    _finish(c, None, spec, async_, wait, verbose, reuse_deleted=reuse_deleted)


def _load(c: typer.Context, slug: str) -> TenantSpec:
    return context(c).specs.load(slug)


@app.command()
def apply(
    c: typer.Context,
    slug: Annotated[str | None, slug_argument("Tenant; all spec files with --all.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every tenant with a spec file.")] = False,
    async_: AsyncOpt = False,
    wait: WaitOpt = 0.0,
    verbose: VerboseOpt = 0,
) -> None:
    """Converge a tenant to its spec file (create it if it was never provisioned; deleted
    tenants are skipped: `tenant create --reuse-deleted` brings one back)."""
    ctx = context(c)
    if all_ == (slug is not None):
        raise SpecError([Problem("arguments", "give a tenant slug or --all")], subject="command")
    specs = list(ctx.specs.load_all().values()) if all_ else [ctx.specs.load(str(slug))]
    for spec in specs:
        try:
            _finish(c, None, spec, async_, wait, verbose)
        except TenantDeletedError as e:
            console.print(f"[yellow]skipped {spec.slug}: {escape(str(e))}[/]")


@app.command()
def suspend(
    c: typer.Context,
    slug: SlugArg,
    async_: AsyncOpt = False,
    wait: WaitOpt = 0.0,
    verbose: VerboseOpt = 0,
) -> None:
    """Stop the app and show a maintenance page."""
    _finish(c, "suspend", _load(c, slug), async_, wait, verbose)


@app.command()
def resume(
    c: typer.Context,
    slug: SlugArg,
    async_: AsyncOpt = False,
    wait: WaitOpt = 0.0,
    verbose: VerboseOpt = 0,
) -> None:
    """Start a suspended tenant again."""
    _finish(c, "resume", _load(c, slug), async_, wait, verbose)


@app.command()
def delete(
    c: typer.Context,
    slug: SlugArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    no_final_backup: Annotated[
        bool,
        typer.Option(
            "--no-final-backup", help="Take no final backup first (needs --reason; audited)."
        ),
    ] = False,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why no final backup is taken.")
    ] = None,
    async_: AsyncOpt = False,
    wait: WaitOpt = 0.0,
    verbose: VerboseOpt = 0,
) -> None:
    """Delete a tenant's instance, database, files, app secrets and TLS certificate, after a
    final backup; its backups and their key are kept for `deleted_backup_days` (its spec
    file stays)."""
    if no_final_backup and not (reason or "").strip():
        raise SpecError(
            [Problem("--reason", "--no-final-backup needs a reason (it is audited)")],
            subject="command",
        )
    spec = _load(c, slug)
    ctx = context(c)
    settings = ctx.settings
    rec = ctx.tenants.get(slug)
    if rec is not None and rec.phase is Phase.deleted and not ctx.operations.pending_for(slug):
        # a rerun after the delete finished (its process killed before it said so)
        console.print(f"{slug} is deleted already: {rec.reason}", markup=False, soft_wrap=True)
        return
    if not yes:
        warning = recovery_warning(settings)
        until = expiry(datetime.now(UTC), settings.deleted_backup_days)
        first = (
            f"No final backup is taken (--no-final-backup: {reason})."
            if no_final_backup
            else "A final backup is taken first."
        )
        typer.confirm(
            f"Delete {spec.name} ({slug}): app, database, files, app secrets and TLS "
            f"certificate? {first} Its backups and their key are kept until "
            f"{until:%Y-%m-%d %H:%M} UTC ({settings.deleted_backup_days:g} days): until then "
            f"`osp-ops backup restore {slug} --to NEW` restores any of them into a new "
            "tenant; after that `osp-ops backup prune` destroys the backups and the key."
            + (f" Warning: {warning}." if warning else ""),
            abort=True,
        )
    params = delete_params(final_backup=not no_final_backup, reason=reason)
    _finish(c, "delete", spec, async_, wait, verbose, params=params)


@app.command("list")
def list_(c: typer.Context, json_: JsonOpt = False) -> None:
    """Tenants: spec files and what the state DB knows of them."""
    ctx = context(c)
    records = {r.slug: r for r in ctx.tenants.list()}
    files = {p.stem for p in ctx.settings.tenants_dir.glob("*.yaml")}
    rows = []
    for slug in sorted(set(records) | files):
        r = records.get(slug)
        rows.append(
            {
                "slug": slug,
                "phase": str(r.phase) if r else "not created",
                "app": r.app if r else None,
                "version": r.observed_version if r else None,
                "desired_version": r.desired_version if r else None,
                "platform": r.platform if r else None,
                "spec_file": slug in files,
                "reason": r.reason if r else None,
            }
        )
    if json_:
        print_json(rows)
        return
    table(
        None,
        ["SLUG", "PHASE", "APP", "VERSION", "PLATFORM", "SPEC FILE"],
        [
            [
                x["slug"],
                x["phase"],
                x["app"],
                x["version"],
                x["platform"],
                "yes" if x["spec_file"] else "missing",
            ]
            for x in rows
        ],
    )


@app.command()
def show(
    c: typer.Context,
    slug: SlugArg,
    json_: JsonOpt = False,
    health: Annotated[bool, typer.Option(help="Check the instance's health.")] = True,
) -> None:
    """One tenant: phase, versions, URL, health, recent operations."""
    ctx = context(c)
    rec = ctx.tenants.get(slug)
    spec = ctx.specs.load(slug) if ctx.specs.exists(slug) else None
    if rec is None and spec is None:
        raise unknown_tenant(ctx, slug)
    data: dict[str, object] = {"slug": slug}
    if rec:
        data.update(rec.to_json())
    else:
        data["phase"] = "not created"
    if spec:
        data["name"] = spec.name
        data["hosts"] = list(spec.hosts.all)
        data["spec_version"] = spec.app.version
        if health and rec is not None and rec.phase not in (Phase.deleted, Phase.requested):
            h = tenant_health(ctx, spec)  # the admin login included
            data["health"] = {
                "ok": h.ok,
                "url": h.url,
                "checks": dict(h.checks),
                "version": h.version,
            }
    data["last_drill"] = last_drill(ctx, slug)
    runs = task_runs(ctx, slug, limit=10)
    data["task_runs"] = [r.to_json() for r in runs]
    data["operations"] = [
        {
            "id": o.id,
            "kind": o.kind,
            "status": interrupted.status(ctx, o),  # never `running` once its runner died
            "created_at": o.created_at.isoformat(),
            "error": o.error,
        }
        for o in ctx.operations.recent(tenant=slug, limit=5)
    ]
    if json_:
        print_json(data)
        return
    for key in (
        "slug",
        "name",
        "phase",
        "reason",
        "app",
        "observed_version",
        "desired_version",
        "platform",
        "hosts",
    ):
        if data.get(key) is not None:
            value = data[key]
            text = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
            text = one_line(text) if key == "reason" else text
            console.print(f"[bold]{key:17}[/] {escape(text)}", soft_wrap=True)
    drill = data["last_drill"]
    if isinstance(drill, dict):
        console.print(f"[bold]{'last drill':17}[/] {escape(summary(drill))}", soft_wrap=True)
    hd = data.get("health")
    if isinstance(hd, dict):
        state = "[green]healthy[/]" if hd["ok"] else "[red]unhealthy[/]"
        console.print(f"[bold]{'health':17}[/] {state} {hd['url']}")
        for k, v in hd["checks"].items():
            console.print(f"  {k}: {v}")
    ops = data["operations"]
    if isinstance(ops, list) and ops:
        table(
            "recent operations",
            ["ID", "KIND", "STATUS", "CREATED (UTC)", "ERROR"],
            [
                [
                    o["id"],
                    o["kind"],
                    o["status"],
                    utc(o["created_at"]).removesuffix(" UTC"),
                    one_line(o["error"]),
                ]
                for o in ops
            ],
        )
    print_task_runs("recent one-time upgrade tasks", runs)


@app.command()
def credentials(c: typer.Context, slug: SlugArg, json_: JsonOpt = False) -> None:
    """Print the first administrator's credentials (recorded in the audit log)."""
    ctx = context(c)
    spec = ctx.specs.load(slug)
    password = ctx.secrets.get(slug, "admin_password")
    ctx.audit.append(
        actor=ctx.actor,
        action="credentials.read",
        tenant=slug,
        details={"secret": "admin_password"},
    )
    username = "admin"
    url = f"https://{spec.hosts.primary}/"
    if json_:
        print_json(
            {"url": url, "username": username, "password": password, "email": str(spec.admin.email)}
        )
        return
    console.print(f"URL:      {url}\nUsername: {username}\nPassword: {password}", markup=False)


@app.command()
def validate(c: typer.Context) -> None:
    """Validate every spec file together (every problem at once, collisions too)."""
    specs = context(c).specs.load_all()
    console.print(f"{len(specs)} tenant specs are valid")


@app.command()
def schema(
    markdown: Annotated[
        bool, typer.Option(help="The reference page instead of JSON Schema.")
    ] = False,
) -> None:
    """Print the tenant spec's JSON Schema (or its Markdown reference)."""
    if markdown:
        typer.echo(spec_markdown(), nl=False)
    else:
        typer.echo(json.dumps(TenantSpec.model_json_schema(), indent=2))
