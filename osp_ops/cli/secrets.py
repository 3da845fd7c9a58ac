"""`osp-ops secrets ...`: master key rotation, tenant secret rotation, listings (never values)."""

from __future__ import annotations

from typing import Annotated

import typer

from osp_ops.cli.common import context, queued, run_inline, slug_argument, verbosity
from osp_ops.cli.lookup import require_tenant
from osp_ops.cli.output import console, print_json
from osp_ops.domain.display import plural
from osp_ops.engine.api import request
from osp_ops.engine.kinds import rotation

app = typer.Typer(help="Encrypted tenant secrets.", no_args_is_help=True)


@app.command("rotate-key")
def rotate_key(c: typer.Context) -> None:
    """Re-encrypt every stored secret under a new master key."""
    ctx = context(c)
    count = ctx.secrets.rotate_key()
    ctx.audit.append(actor=ctx.actor, action="secrets.rotate-key", details={"resealed": count})
    console.print(f"master key rotated; {plural(count, 'secret')} re-encrypted")


@app.command("list")
def list_(
    c: typer.Context,
    tenant: Annotated[str, slug_argument("Tenant.")],
    json_: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Names of a tenant's secrets (values are never printed here)."""
    ctx = context(c)
    names = ctx.secrets.names(tenant)
    if not names:  # a typo'd slug is not "no secret"
        require_tenant(ctx, tenant)
    if json_:
        print_json({"tenant": tenant, "secrets": names})
        return
    for name in names:
        console.print(name, markup=False)


@app.command()
def rotate(
    c: typer.Context,
    tenant: Annotated[str, slug_argument("Tenant.")],
    name: Annotated[
        list[str] | None,
        typer.Option(help="A secret to rotate (repeatable); every app secret if unset."),
    ] = None,
    async_: Annotated[bool, typer.Option("--async", help="Queue for a worker.")] = False,
    wait: Annotated[float, typer.Option(help="Seconds to wait for a busy tenant.")] = 0.0,
) -> None:
    """New values for a tenant's secrets, pushed to its platform (DB role, app, Secret).

    The new values are never printed; `tenant credentials` shows the admin's.
    """
    ctx = context(c)
    names = rotation.check_names(list(name or []))
    spec = ctx.specs.load(tenant)
    op, created = request(ctx, rotation.KIND, spec, params={"names": names})
    if async_:
        queued(op, created)
        return
    result = run_inline(ctx, op, created=created, wait=wait, verbose=verbosity(c))
    console.print(f"[green]rotated {', '.join(names)} of {tenant}: {result.status}[/]")
