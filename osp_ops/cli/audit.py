"""`osp-ops audit ...`: read and verify the hash-chained audit log."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from osp_ops.cli.common import context, slug_option
from osp_ops.cli.lookup import require_tenant
from osp_ops.cli.output import console, print_json, table
from osp_ops.domain.display import plural, utc
from osp_ops.domain.errors import OspOpsError

app = typer.Typer(help="The audit log.", no_args_is_help=True)


class AuditBrokenError(OspOpsError):
    """The audit chain does not verify."""

    exit_code = 7


@app.command()
def verify(
    c: typer.Context,
    json_: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Check the audit chain with the audit key and against the latest anchor in the
    backup store (no row edited, deleted, inserted or the chain rewritten behind osp-ops'
    back); when it holds, anchor its head again."""
    report = context(c).audit.verify()
    if json_:
        print_json(
            {"ok": report.ok, "rows": report.rows, "problems": report.problems,
             "anchor": report.anchor, "anchored": report.anchored}
        )  # fmt: skip
    elif report.ok:
        checked = f", checked against anchor {report.anchor}" if report.anchor else ""
        console.print(f"audit log intact: {plural(report.rows, 'row')}{checked}", markup=False)
        for note in report.notes:
            console.print(note, markup=False)
        if report.anchored:
            console.print(f"anchored as {report.anchored}", markup=False)
    if not report.ok:
        for p in report.problems:
            console.print(f"  - {p}", markup=False)
        raise AuditBrokenError(f"audit log tampered with: {len(report.problems)} problems")


@app.command("list")
def list_(
    c: typer.Context,
    tenant: Annotated[str | None, slug_option("--tenant", help_text="Only this tenant.")] = None,
    limit: Annotated[int, typer.Option(help="How many.")] = 50,
    json_: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Newest audit entries first."""
    ctx = context(c)
    entries = ctx.audit.entries(tenant=tenant, limit=limit)
    if tenant is not None and not entries:  # a typo'd slug is not "nothing happened"
        require_tenant(ctx, tenant)
    if json_:
        print_json([e.__dict__ for e in entries])
        return
    table(
        None,
        ["#", "AT (UTC)", "ACTOR", "TENANT", "ACTION", "DETAILS"],
        [
            [
                e.id,
                utc(e.at).removesuffix(" UTC"),
                e.actor,
                e.tenant,
                e.action,
                json.dumps(e.details, ensure_ascii=False, sort_keys=True, default=str),
            ]
            for e in entries
        ],
        count=("entry", "entries"),
    )
