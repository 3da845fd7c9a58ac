"""`osp-ops web serve`: the self-service portal (request form, client space, admin pages)."""

from __future__ import annotations

from typing import Annotated

import typer

from osp_ops.cli.common import context

app = typer.Typer(help="The self-service portal.", no_args_is_help=True)


@app.command()
def serve(
    c: typer.Context,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
) -> None:
    """Serve the portal (settings: `portal` of `config show`, see docs/portal.md); run
    `osp-ops worker` beside it to create the instances the ops team approves."""
    import uvicorn

    from osp_ops.web.app import create_app

    ctx = context(c)
    uvicorn.run(create_app(lambda: ctx), host=host, port=port, log_level="info")
