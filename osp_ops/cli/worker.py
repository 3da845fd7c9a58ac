"""`osp-ops worker`: run queued operations (from `--async`, schedules and the web form)."""

from __future__ import annotations

from typing import Annotated

import typer

from osp_ops.cli.common import context
from osp_ops.cli.output import console
from osp_ops.domain.display import plural
from osp_ops.engine.worker import run_worker


def worker(
    c: typer.Context,
    once: Annotated[bool, typer.Option("--once", help="Exit when the queue is empty.")] = False,
    poll: Annotated[float, typer.Option(help="Seconds between queue polls.")] = 2.0,
) -> None:
    """Claim queued operations and run them until stopped."""
    ran = run_worker(context(c), once=once, poll=poll)
    console.print(f"worker ran {plural(ran, 'operation')}")
