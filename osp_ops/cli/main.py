"""Entry point: global options, the shared context, error handling and exit codes.

Exit codes: 0 success; 1 an operation or platform failed; 2 invalid input (spec,
settings, catalog, an ambiguous id prefix); 3 not found (tenant, operation, backup);
4 illegal phase change; 5 tenant busy (lease held); 6 cancelled; 7 audit log broken.
Expected errors print one line ``Error: ...`` (an invalid spec lists its problems below
it), then at most one ``Hint: ...`` line; the full text of a failed operation is in
`osp-ops op show ID`. Bugs print a traceback.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import typer

from osp_ops.cli import audit, backup, config, logs, ops, secrets, tenant, upgrade, web, worker
from osp_ops.cli import requests as portal_requests
from osp_ops.cli.output import err_console
from osp_ops.domain.error_text import one_line
from osp_ops.domain.errors import OspOpsError, SpecError
from osp_ops.engine.context import Context, build_context
from osp_ops.settings import Settings, load_settings

app = typer.Typer(
    name="osp-ops",
    help="Provision, configure, upgrade and back up one participation instance per municipality.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@dataclass
class State:
    """Per-invocation state: lazily loaded settings and context."""

    config_file: Path | None = None
    verbose: int = 0
    _settings: tuple[Settings, dict[str, str]] | None = field(default=None, repr=False)
    _context: Context | None = field(default=None, repr=False)

    def settings(self) -> tuple[Settings, dict[str, str]]:
        """Settings and where each value came from."""
        if self._settings is None:
            self._settings = load_settings(self.config_file)
        return self._settings

    def context(self) -> Context:
        """The shared context (opens the state DB on first use)."""
        if self._context is None:
            self._context = build_context(self.settings()[0])
        return self._context


@app.callback()
def _root(
    ctx: typer.Context,
    config_file: Annotated[
        Path | None, typer.Option("--config", "-c", help="Settings file (YAML).")
    ] = None,
    verbose: Annotated[
        int,
        typer.Option(
            "--verbose",
            "-v",
            count=True,
            help="Debug logging, and every platform task of an operation run here (-vv: "
            "skipped tasks too).",
        ),
    ] = 0,
) -> None:
    logs.setup(verbose > 0)
    ctx.obj = State(config_file=config_file, verbose=verbose)


app.add_typer(tenant.app, name="tenant")
app.add_typer(ops.app, name="op")
app.add_typer(audit.app, name="audit")
app.add_typer(config.app, name="config")
app.add_typer(secrets.app, name="secrets")
app.add_typer(upgrade.app, name="upgrade")
app.add_typer(backup.app, name="backup")
app.add_typer(web.app, name="web")
app.add_typer(portal_requests.app, name="request")
app.command("worker")(worker.worker)


@app.command("docs", hidden=True)
def _docs(what: str = typer.Argument("cli", help="Only `cli` for now.")) -> None:
    """Print the generated CLI reference (docs/cli.md)."""
    from osp_ops.cli.docgen import cli_markdown

    typer.echo(cli_markdown(app), nl=False)


def main() -> None:
    """Console script: run the CLI, turning expected errors into one line and an exit code."""
    try:
        app()
    except SpecError as e:
        if len(e.problems) == 1:
            _say(f"Error: invalid {e.subject}: {e.problems[0]}")
        else:  # validation reports every problem at once, one per line
            _say(f"Error: invalid {e.subject}: {len(e.problems)} problems")
            for p in e.problems:
                _say(f"  - {p}")
        _hint(e)
        sys.exit(e.exit_code)
    except OspOpsError as e:
        _say(f"Error: {one_line(str(e))}")
        _hint(e)
        sys.exit(e.exit_code)


def _say(line: str) -> None:
    err_console.print(line, markup=False, soft_wrap=True)


def _hint(e: OspOpsError) -> None:
    """At most one ``Hint:`` line: what to do next (the full text is in `op show`)."""
    if e.hint:
        _say(f"Hint: {one_line(e.hint)}")
