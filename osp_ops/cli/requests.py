"""`osp-ops request ...`: the portal's requests (list, show, approve, reject, expire) and
its admin accounts. Approval is what writes the tenant spec and queues its creation."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from osp_ops.cli.common import context
from osp_ops.cli.output import console, print_json, table
from osp_ops.domain.display import utc
from osp_ops.domain.errors import ConfigError
from osp_ops.engine.context import Context
from osp_ops.store.requests import RequestState

if TYPE_CHECKING:
    from osp_ops.web.portal import Portal

app = typer.Typer(help="Requests made on the self-service portal.", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
RequestId = Annotated[str, typer.Argument(help="Request id (as `request list` shows it).")]


def _portal(ctx: Context) -> Portal:
    from osp_ops.web.mail import SmtpMailer
    from osp_ops.web.portal import Portal

    settings = ctx.settings.portal
    return Portal(ctx, settings, mailer=SmtpMailer(settings))


@app.command("list")
def list_(
    c: typer.Context,
    state: Annotated[RequestState | None, typer.Option(help="Only requests in this state.")] = None,
    json_: JsonOpt = False,
) -> None:
    """Requests, newest first (unconfirmed ones past 24 h are expired first)."""
    portal = _portal(context(c))
    portal.expire()
    reqs = [portal.sync(r) for r in portal.requests.recent(state=state)]
    if json_:
        print_json([r.to_json() for r in reqs])
        return
    table(
        None,
        ["ID", "STATE", "SLUG", "MUNICIPALITY", "ADDRESS", "CREATED (UTC)"],
        [
            [
                r.id,
                r.state,
                r.slug,
                r.data.get("municipality"),
                r.data.get("host"),
                utc(r.created_at)[:16],
            ]
            for r in reqs
        ],
        count=("request", "requests"),
    )


@app.command()
def show(c: typer.Context, request_id: RequestId, json_: JsonOpt = False) -> None:
    """Everything recorded of one request, its personal data included."""
    portal = _portal(context(c))
    req = portal.sync(portal.requests.require(request_id))
    if json_:
        print_json(req.to_json())
        return
    data = req.to_json()
    for key in (
        "id",
        "state",
        "slug",
        "email",
        "ip",
        "consent_version",
        "created_at",
        "expires_at",
        "confirmed_at",
        "decided_by",
        "decided_at",
        "reason",
        "operation_id",
    ):
        console.print(f"{key:16} {data.get(key) or '-'}", markup=False)
    for key, value in req.data.items():
        console.print(f"  {key:14} {value}", markup=False)


@app.command()
def approve(c: typer.Context, request_id: RequestId) -> None:
    """Write the tenant spec and queue its creation (run `osp-ops worker` to carry it out)."""
    ctx = context(c)
    req = _portal(ctx).approve(request_id, actor=ctx.actor)
    console.print(
        f"approved {req.id}: tenants/{req.slug}.yaml written, creation queued as "
        f"operation {req.operation_id}",
        markup=False,
    )


@app.command()
def reject(
    c: typer.Context,
    request_id: RequestId,
    reason: Annotated[str, typer.Option(help="Why; emailed to the requester.")],
) -> None:
    """Refuse a pending request; the reason is emailed, then the personal data deleted."""
    ctx = context(c)
    req = _portal(ctx).reject(request_id, actor=ctx.actor, reason=reason)
    console.print(f"rejected {req.id}", markup=False)


@app.command()
def expire(c: typer.Context) -> None:
    """Expire unconfirmed requests older than 24 h and delete their personal data."""
    ids = _portal(context(c)).expire()
    console.print(f"expired {len(ids)} request(s)", markup=False)


@app.command("admin-add")
def admin_add(
    c: typer.Context,
    username: Annotated[str, typer.Argument(help="Account name.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
) -> None:
    """Create a portal admin account, or set its password (argon2id; never on argv)."""
    from osp_ops.store.requests import AdminStore
    from osp_ops.web.auth import hash_password

    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        hashed = hash_password(password)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    created = AdminStore(context(c).db).put(username, hashed)
    console.print(f"{'created' if created else 'updated'} admin {username}", markup=False)


@app.command("admin-list")
def admin_list(c: typer.Context) -> None:
    """The portal admin accounts."""
    from osp_ops.store.requests import AdminStore

    table(
        None,
        ["USER", "CREATED (UTC)"],
        [[a.username, utc(a.created_at)[:16]] for a in AdminStore(context(c).db).accounts()],
    )


@app.command("admin-remove")
def admin_remove(c: typer.Context, username: Annotated[str, typer.Argument()]) -> None:
    """Delete a portal admin account and its sessions."""
    from osp_ops.store.requests import AdminStore

    gone = AdminStore(context(c).db).remove(username)
    console.print(f"{'removed' if gone else 'no such'} admin {username}", markup=False)
