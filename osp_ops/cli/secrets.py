"""`osp-ops secrets ...`: master key rotation and secret listings (never values)."""

from __future__ import annotations

import typer

from osp_ops.cli.common import context
from osp_ops.cli.output import console

app = typer.Typer(help="Encrypted tenant secrets.", no_args_is_help=True)


@app.command("rotate-key")
def rotate_key(c: typer.Context) -> None:
    """Re-encrypt every stored secret under a new master key."""
    ctx = context(c)
    count = ctx.secrets.rotate_key()
    ctx.audit.append(actor=ctx.actor, action="secrets.rotate-key", details={"resealed": count})
    console.print(f"master key rotated; {count} secrets re-encrypted")


@app.command("list")
def list_(c: typer.Context, tenant: str) -> None:
    """Names of a tenant's secrets (values are never printed here)."""
    for name in context(c).secrets.names(tenant):
        console.print(name)
