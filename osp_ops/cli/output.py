"""Output helpers shared by the command groups: JSON, tables, live progress."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from osp_ops.domain.error_text import one_line
from osp_ops.platforms.base import Event
from osp_ops.store.operations import OperationInfo

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def print_json(data: Any) -> None:
    """Machine-readable output on stdout."""
    sys.stdout.write(json.dumps(data, indent=2, default=str, ensure_ascii=False) + "\n")


def table(title: str | None, columns: list[str], rows: list[list[Any]]) -> None:
    """A simple table; cells are plain text (a ``[`` in a tool's output is no markup)."""
    t = Table(title=title, show_lines=False, header_style="bold")
    for c in columns:
        t.add_column(c)
    for r in rows:
        t.add_row(*[Text("" if v is None else str(v), overflow="fold") for v in r])
    console.print(t)


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


class ConsoleProgress:
    """Live progress of an operation on the terminal (plain lines when not a TTY)."""

    def __init__(self, verbose: bool = False) -> None:
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
        """Show a platform event (changed/failed always; ok ones with --verbose).

        ``progress`` events (bytes and MB/s of a running backup) update the live status
        line on a terminal and are printed as lines elsewhere (logs of scheduled jobs).
        """
        if event.status == "progress" and console.is_terminal:
            self._status.update(f"{step}  {event.message}")
            return
        if event.status in ("ok", "skipped") and not self.verbose:
            return
        style = _STATUS_STYLE.get(event.status, "")
        host = f"[{event.host}] " if event.host else ""
        console.print(f"      [{style}]{event.status:8}[/] {host}{event.message}")

    def close(self) -> None:
        """Stop the spinner."""
        self._status.stop()
