"""`osp-ops config show`: the effective settings and where each came from."""

from __future__ import annotations

from typing import Annotated

import typer

from osp_ops.cli.common import settings
from osp_ops.cli.output import err_console, print_json, table
from osp_ops.engine.recovery import recovery_warning
from osp_ops.settings import redacted

app = typer.Typer(help="Operator settings.", no_args_is_help=True)


@app.command()
def show(
    c: typer.Context,
    json_: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Effective settings (secrets redacted) with their source: env, file or default."""
    s, sources = settings(c)
    data = redacted(s)
    if json_:
        print_json({k: {"value": v, "source": sources.get(k, "derived")} for k, v in data.items()})
    else:
        table(
            None,
            ["SETTING", "VALUE", "SOURCE"],
            [[k, v, sources.get(k, "derived")] for k, v in data.items()],
        )
    warning = recovery_warning(s)
    if warning:
        err_console.print(f"Warning: {warning}", markup=False, soft_wrap=True)
