"""Output helpers shared by the command groups: JSON, tables, live progress."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from osp_ops.domain.display import plural
from osp_ops.domain.error_text import one_line
from osp_ops.platforms.base import Event
from osp_ops.store.operations import OperationInfo

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def print_json(data: Any) -> None:
    """Machine-readable output on stdout."""
    sys.stdout.write(json.dumps(data, indent=2, default=str, ensure_ascii=False) + "\n")


ID_COLUMNS = frozenset({"ID", "SLUG", "BACKUP", "OPERATION"})
WORD_COLUMNS = frozenset({"TENANT", "KIND", "STATUS", "PHASE"})


def fit_columns(
    columns: list[str], cells: list[list[str]], drop_first: tuple[str, ...], width: int
) -> tuple[list[str], list[list[str]]]:
    """Leave out the ``drop_first`` columns, in order, until the rows fit in ``width``."""

    def natural(cols: list[str]) -> int:
        idx = [columns.index(c) for c in cols]
        return sum(max([len(columns[i]), *(len(r[i]) for r in cells)]) + 1 for i in idx)

    kept = list(columns)
    for name in drop_first:
        if natural(kept) <= width:
            break
        if name in kept:
            kept.remove(name)
    idx = [columns.index(c) for c in kept]
    return kept, [[r[i] for i in idx] for r in cells]


def table(
    title: str | None,
    columns: list[str],
    rows: list[list[Any]],
    *,
    ids: frozenset[str] = ID_COLUMNS,
    count: tuple[str, str] | None = None,
    words: frozenset[str] = WORD_COLUMNS,
    drop_first: tuple[str, ...] = (),
) -> None:
    """A simple table; cells are plain text (a ``[`` in a tool's output is no markup).

    Columns named in ``ids`` are never cut or wrapped, at any width (80 columns, a pipe):
    an id must be copyable from the output. Columns in ``words`` (a slug, a status) are
    not broken mid-word either. When the table is wider than the terminal, the columns
    in ``drop_first`` are left out, in that order, until it fits (``--json`` has them
    all); the other columns wrap. ``count`` (singular, plural) adds a line under the
    table: ``3 backups``.
    """
    cells = [["" if v is None else str(v) for v in r] for r in rows]
    columns, cells = fit_columns(columns, cells, drop_first, console.width)
    t = Table(
        title=title,
        header_style="bold",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        padding=(0, 1, 0, 0),
    )
    for i, c in enumerate(columns):
        if c in ids or c in words:
            longest = max([len(c), *(len(r[i]) for r in cells)])
            t.add_column(c, no_wrap=True, min_width=longest)
        else:
            t.add_column(c, overflow="fold")
    for r in cells:
        t.add_row(*[Text(v, overflow="fold") for v in r])
    console.print(t)
    if count is not None:
        console.print(plural(len(rows), *count), markup=False)


_STATUS_STYLE = {
    "done": "green",
    "skipped": "dim",
    "running": "cyan",
    "retrying": "yellow",
    "failed": "red",
    "changed": "yellow",
    "ok": "dim",
    "info": "blue",
    "progress": "cyan",
}


# The -v count from which a platform event is shown (unlisted statuses: 1).
_EVENT_VERBOSITY = {"info": 0, "progress": 0, "skipped": 2}


class ConsoleProgress:
    """Live progress of an operation on the terminal (plain lines when not a TTY)."""

    def __init__(self, verbose: int = 0) -> None:
        self.verbose = verbose
        self._status = console.status("")

    def started(self, op: OperationInfo) -> None:
        """Announce the operation."""
        console.print(f"[bold]{op.kind}[/] {op.tenant}  [dim]operation {op.id}[/]")
        self._status.start()

    def step(self, name: str, status: str, *, attempt: int = 1, detail: str | None = None) -> None:
        """Show a step's status change."""
        style = _STATUS_STYLE.get(status, "")
        if status == "running":
            suffix = f" (attempt {attempt})" if attempt > 1 else ""
            self._status.update(f"{name}{suffix}")
            return
        mark = {"done": "✓", "skipped": "·", "retrying": "↻", "failed": "✗"}.get(status, "-")
        text = f"  [{style}]{mark} {name}[/]"
        if detail:
            # A failure's full text follows as the command's error (and in `op show`).
            line = one_line(detail) if status in ("failed", "retrying") else detail
            text += f"  [dim]{escape(line)}[/]"
        console.print(text)
        if status == "failed":
            self._status.stop()

    def event(self, step: str, event: Event) -> None:
        """Show a platform event: its tasks (changed, ok, failed) with ``-v``, skipped ones
        with ``-vv``; osp-ops' own ``info`` lines always. A failed task's line is in the
        failed step's line by default (and in `op show`).

        ``progress`` events (bytes and MiB/s of a running backup) update the live status
        line on a terminal and are printed as lines elsewhere (logs of scheduled jobs).
        """
        if event.status == "progress" and console.is_terminal:
            self._status.update(Text(f"{step}  {event.message}"))
            return
        if self.verbose < _EVENT_VERBOSITY.get(event.status, 1):
            return
        line = Text(f"      {event.status:8}", style=_STATUS_STYLE.get(event.status, ""))
        line.append(f" [{event.host}] " if event.host else " ")  # plain text, not markup
        line.append(event.message)
        console.print(line)

    def close(self) -> None:
        """Stop the spinner."""
        self._status.stop()
