"""`osp-ops backup drills SLUG`: the tenant's restore drills, newest first.

Each drill: when (UTC), which backup, the result, the RTO, and what it checked (the row
counts of the app's main tables against the manifest; the scratch app and admin login
where the platform can start one). `tenant show` shows the last one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from osp_ops.cli.common import context, slug_argument
from osp_ops.cli.lookup import require_tenant
from osp_ops.cli.output import print_json, table
from osp_ops.domain.display import utc
from osp_ops.engine.context import Context
from osp_ops.store.backups import Backups, DrillRecord


def _aware(t: datetime) -> datetime:
    """The state DB's times are UTC (naive on SQLite)."""
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def drill_json(d: DrillRecord) -> dict[str, Any]:
    """One drill as plain data."""
    details = d.details
    return {
        "id": d.id,
        "date": _aware(d.started_at).isoformat(),
        "backup": d.backup_id,
        "result": d.result,
        "rto_seconds": d.rto_seconds,
        "checked": {
            "row_counts": details.get("expected") or {},
            "restored_row_counts": details.get("found") or {},
            "app": details.get("app", "not run"),
        },
        "problem": details.get("problem") or None,
    }


def checked_text(d: dict[str, Any]) -> str:
    """``row counts of 3 tables, scratch app + admin login``."""
    tables = len(d["checked"]["row_counts"])
    text = f"row counts of {tables} table{'' if tables == 1 else 's'}"
    app = d["checked"]["app"]
    if app == "ok":
        return text + ", scratch app + admin login"
    return text if app == "not run" else f"{text}, scratch app: {app}"


def summary(d: dict[str, Any]) -> str:
    """One line: ``ok 2026-12-01 09:31:20 UTC, backup ..., RTO 3.2 s``."""
    rto = f"RTO {d['rto_seconds']:.1f} s" if d["rto_seconds"] is not None else "no RTO"
    text = f"{d['result']} {utc(d['date'])}, backup {d['backup']}, {rto}"
    return f"{text}: {d['problem']}" if d["problem"] else text


def last_drill(ctx: Context, slug: str) -> dict[str, Any] | None:
    """The tenant's newest drill, or None."""
    drills = Backups(ctx.db).drills(slug)
    return drill_json(drills[-1]) if drills else None


def drills(
    c: typer.Context,
    slug: Annotated[str, slug_argument("Tenant.")],
    json_: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """The tenant's restore drills, newest first: date, backup, result, RTO, what was
    checked (`backup drill` runs one)."""
    ctx = context(c)
    rows = [drill_json(d) for d in reversed(Backups(ctx.db).drills(slug))]
    if not rows:
        require_tenant(ctx, slug)
    if json_:
        print_json({"tenant": slug, "drills": rows})
        return
    table(
        f"drills of {slug}",
        ["DATE (UTC)", "BACKUP", "RESULT", "RTO", "CHECKED"],
        [
            [
                utc(d["date"]).removesuffix(" UTC"),
                d["backup"],
                d["result"] + (f": {d['problem']}" if d["problem"] else ""),
                f"{d['rto_seconds']:.1f} s" if d["rto_seconds"] is not None else "-",
                checked_text(d),
            ]
            for d in rows
        ],
        count=("drill", "drills"),
    )
