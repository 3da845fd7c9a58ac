"""`osp-ops backup ...`: run, list, verify, restore, prune and drill tenant backups."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer

from osp_ops.backups import BackupInfo, VerifyReport, list_backups
from osp_ops.cli import drills, lookup
from osp_ops.cli.common import context, run_inline, slug_argument, slug_option, verbosity
from osp_ops.cli.output import console, err_console, print_json, table
from osp_ops.domain import display
from osp_ops.domain.display import utc
from osp_ops.domain.error_text import one_line
from osp_ops.domain.errors import NotFoundError, OspOpsError, Problem, SpecError
from osp_ops.domain.schedule import is_due
from osp_ops.domain.spec import TenantSpec
from osp_ops.engine import backup_access, deletion, interrupted
from osp_ops.engine.api import request, request_converge
from osp_ops.engine.context import Context
from osp_ops.engine.kinds import restore as restores
from osp_ops.engine.recovery import ensure_recovery_key, recovery_warning
from osp_ops.engine.repair import verify_tenant
from osp_ops.store.backups import BackupRecord, Backups

app = typer.Typer(help="Backups: run, list, verify, restore, prune, drill.", no_args_is_help=True)

Slug = Annotated[str | None, slug_argument("Tenant; every tenant with --all.")]
All = Annotated[bool, typer.Option("--all", help="Every tenant.")]
Wait = Annotated[float, typer.Option(help="Seconds to wait for a busy tenant.")]


def _specs(ctx: Context, slug: str | None, all_: bool) -> list[TenantSpec]:
    if all_ == (slug is not None):
        raise SpecError([Problem("arguments", "give a tenant slug or --all")], subject="command")
    if not all_:
        return [ctx.specs.load(str(slug))]
    specs = list(ctx.specs.load_all().values())
    if not specs:  # a scheduled run that finds nothing must say so
        raise NotFoundError(
            f"no tenant spec in {ctx.settings.tenants_dir} (tenants_dir): nothing to do"
        )
    return specs


def _live(ctx: Context, specs: list[TenantSpec], slug: str | None, what: str) -> list[TenantSpec]:
    """The specs of tenants that are not deleted: a deleted slug is refused (exit 4),
    deleted tenants of --all/--due are skipped, saying so."""
    if slug is not None:
        deletion.refuse_deleted(ctx, slug, what)
        return specs
    alive, deleted = deletion.live(ctx, specs)
    if deleted:
        console.print(f"skipped deleted tenants: {', '.join(deleted)}", markup=False)
    return alive


def _last_complete(ctx: Context, spec: TenantSpec) -> datetime | None:
    store = backup_access.store_for(ctx)
    done = [i for i in list_backups(store, spec.slug) if i.state == "complete"]
    return done[-1].taken_at if done else None


def _run_each(
    ctx: Context,
    kind: str,
    specs: list[TenantSpec],
    *,
    concurrency: int,
    wait: float,
    params: dict[str, Any] | None = None,
    verbose: int = 0,
) -> None:
    """One operation per tenant (each holds its tenant's lease), in a thread pool."""

    def one(spec: TenantSpec) -> tuple[str, OspOpsError] | None:
        op, created = request(ctx, kind, spec, params=params)
        try:
            result = run_inline(ctx, op, created=created, wait=wait, verbose=verbose)
        except OspOpsError as e:
            return spec.slug, e
        last = result.steps[-1].output if result.steps else ""
        console.print(f"{spec.slug}: {last}", markup=False)
        return None

    if concurrency <= 1 or len(specs) <= 1:
        failures = [f for f in map(one, specs) if f]
    else:
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            failures = [f for f in pool.map(one, specs) if f]
    if len(specs) == 1 and failures:
        raise failures[0][1]  # its own exit code; its hint names `op show`
    if failures:  # one line per failed tenant, then the error
        for slug, error in failures:
            err_console.print(f"{slug}: FAILED: {one_line(str(error))}", markup=False)
        raise OspOpsError(
            f"{len(failures)} of {len(specs)} tenants failed",
            hint="`osp-ops op list --status failed` lists them; `osp-ops op show ID` has each error",
        )


@app.command()
def run(
    c: typer.Context,
    slug: Slug = None,
    all_: All = False,
    due: Annotated[
        bool,
        typer.Option(
            "--due", help="Only tenants whose backup schedule is due (all such without a slug)."
        ),
    ] = False,
    concurrency: Annotated[int, typer.Option(min=1, help="Tenants backed up at once.")] = 1,
    wait: Wait = 0.0,
) -> None:
    """Back up (dump, upload, verify) one tenant or all of them (`--due` alone: all due)."""
    ctx = context(c)
    warning = recovery_warning(ctx.settings)
    if warning:
        err_console.print(f"Warning: {warning}", markup=False, soft_wrap=True)
    specs = _live(ctx, _specs(ctx, slug, all_ or (due and slug is None)), slug, "back up")
    if due:
        now = datetime.now(UTC)
        specs = [
            s for s in specs if is_due(s.backup.schedule, s.time_zone, _last_complete(ctx, s), now)
        ]
        if not specs:
            console.print("no backup is due")
            return
    _run_each(ctx, "backup", specs, concurrency=concurrency, wait=wait, verbose=verbosity(c))


@app.command("list")
def list_(
    c: typer.Context,
    slug: Annotated[str, slug_argument("Tenant.")],
    json_: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """The tenant's backups as the object store has them (works with an empty state DB),
    with the last verify's result; a backup whose manifest is lost is listed as damaged."""
    ctx = context(c)
    records = {b.id: b for b in Backups(ctx.db).for_tenant(slug)}
    infos = list_backups(
        backup_access.store_for(ctx),
        slug,
        mac_key=backup_access.known_mac_key(ctx, slug),
        completed=set(records),
    )
    if not infos:  # a typo'd slug is not "no backup"
        lookup.require_tenant(ctx, slug)
    rows: list[dict[str, Any]] = []
    for i in infos:
        size = sum(o.size for o in i.objects)
        rows.append(
            {
                "backup_id": i.backup_id,
                "taken_at": i.taken_at.isoformat(),
                "state": i.state,
                "size": size,
                **_verify_fields(records.get(i.backup_id)),
                "problem": i.problem,
            }
        )
    if json_:
        print_json({"tenant": slug, "backups": rows})
        return
    table(
        f"backups of {slug}",
        ["ID", "TAKEN (UTC)", "STATE", "SIZE", "LAST VERIFY (UTC)"],
        [
            [
                r["backup_id"],
                utc(r["taken_at"]).removesuffix(" UTC"),
                r["state"] + (f" ({r['problem']})" if r["problem"] else ""),
                display.size(r["size"]),
                _last_verify(r["last_verify"]),
            ]
            for r in rows
        ],
        count=("backup", "backups"),
    )


def _verify_fields(rec: BackupRecord | None) -> dict[str, Any]:
    """The last verify of a cached backup; ``verified_at`` only while it last passed."""
    if rec is None or rec.verify_result is None or rec.verify_at is None:
        return {"verified_at": None, "last_verify": None}
    passed = rec.verify_result == "passed" and rec.verified_at is not None
    last = {"result": rec.verify_result, "at": rec.verify_at.isoformat()}
    return {
        "verified_at": rec.verified_at.isoformat() if passed and rec.verified_at else None,
        "last_verify": last | {"problem": rec.verify_problem},
    }


def _last_verify(last: dict[str, Any] | None) -> str:
    if not last:
        return "-"
    text = f"{last['result']} {utc(last['at']).removesuffix(' UTC')}"
    return f"{text}: {last['problem']}" if last["problem"] and last["result"] != "passed" else text


@app.command()
def verify(
    c: typer.Context,
    slug: Slug = None,
    all_: All = False,
    backup_id: Annotated[
        str | None, typer.Option("--backup", help="One backup id (or a unique prefix of it).")
    ] = None,
    sample: Annotated[
        float, typer.Option(help="Percent of the backups to check (the newest always).")
    ] = 100.0,
) -> None:
    """Re-read backups end to end (checksums, MAC, decrypt + decompress); every result
    (passed, failed, damaged) is recorded. A backup whose manifest is missing or
    unreadable is DAMAGED and kept (`backup repair`). The scheduler runs `--all`."""
    ctx = context(c)
    if all_ and backup_id:
        raise SpecError([Problem("--backup", "names one backup: give a slug")], subject="command")
    reports: list[VerifyReport] = []
    for spec in _specs(ctx, slug, all_):
        if all_ and ctx.tenants.get(spec.slug) is None:
            console.print(f"{spec.slug}: never created, no backup")
            continue
        chosen = lookup.backup_id(ctx, spec.slug, backup_id)
        found = verify_tenant(ctx, spec.slug, backup_id=chosen, sample=sample / 100)
        if not found:
            console.print(f"{spec.slug} has no backup")
        reports += found
    for r in reports:
        label = f"{r.tenant} {r.backup_id}" if all_ else r.backup_id
        if r.ok:
            speed = display.rate(r.bytes_read, r.seconds)
            console.print(f"{label}: ok ({display.size(r.bytes_read)}, {speed})")
        elif r.damaged:
            console.print(
                f"{label}: DAMAGED (kept): {'; '.join(r.problems)}; "
                f"`osp-ops backup repair {r.tenant} {r.backup_id}` rebuilds the manifest",
                markup=False,
            )
        else:
            console.print(f"{label}: FAILED: {'; '.join(r.problems)}", markup=False)
    bad = [r for r in reports if not r.ok]
    if bad:
        damaged = sum(r.damaged for r in bad)
        raise OspOpsError(
            f"{len(bad)} of {len(reports)} backups failed verification"
            + (f" ({damaged} damaged: manifest missing or unreadable; kept)" if damaged else "")
        )


@app.command()
def repair(
    c: typer.Context,
    slug: Annotated[str, slug_argument("Tenant.")],
    backup_id: Annotated[str, typer.Argument(help="The damaged backup (or a unique prefix).")],
    wait: Wait = 0.0,
) -> None:
    """Rebuild a damaged backup's manifest from the state DB's record, if every object
    verifies against it (nothing is written otherwise)."""
    ctx = context(c)
    spec = ctx.specs.load(slug)
    backup_id = str(lookup.backup_id(ctx, slug, backup_id))
    _run_each(
        ctx,
        "repair",
        [spec],
        params={"backup_id": backup_id},
        concurrency=1,
        wait=wait,
        verbose=verbosity(c),
    )


@app.command()
def restore(
    c: typer.Context,
    slug: Annotated[str, slug_argument("Tenant whose backup is restored.")],
    backup_id: Annotated[
        str | None,
        typer.Option(
            "--backup", help="Backup id or a unique prefix; the latest complete if unset."
        ),
    ] = None,
    to: Annotated[
        str | None,
        slug_option(
            "--to", help_text="Restore into a NEW tenant (a clone) instead, with this slug."
        ),
    ] = None,
    host: Annotated[
        str | None, typer.Option(help="The clone's host name (default <slug>.<base domain>).")
    ] = None,
    confirm_drop: Annotated[
        bool,
        typer.Option(
            "--confirm-drop", help="Drop the databases and files earlier restores retired."
        ),
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    wait: Wait = 0.0,
) -> None:
    """Verify, restore into a new database (and files), then switch the app to it.

    The app is stopped (maintenance page) while the data is switched; the previous
    database and files are kept until `--confirm-drop`. With `--to NEW`, a new tenant is
    created from the source's spec and the backup is restored into it instead. An
    in-place restore and `--confirm-drop` ask first (naming the backup and its age, or
    what is dropped) unless `--yes`.
    """
    ctx = context(c)
    lookup.require_tenant(ctx, slug)
    if confirm_drop:
        spec = ctx.specs.load(slug)
        names = restores.retired_databases(ctx, spec)
        if not names:
            console.print("nothing retired to drop")
            return
        if not yes:
            typer.confirm(
                f"Drop {', '.join(names)} of {slug} for good (data earlier restores replaced)?",
                abort=True,
            )
        dropped = restores.drop_retired(ctx, spec)
        console.print(f"dropped {', '.join(dropped)}" if dropped else "nothing retired to drop")
        return
    pending = interrupted.interrupted_of(ctx, to or slug, "restore")
    if (
        backup_id is None
        and pending is not None
        and (pending.params.get("source_tenant") == (slug if to else None))
    ):  # the same command again: the interrupted restore's backup
        backup_id = str(pending.params["backup_id"])
    info = restores.find_backup(ctx, slug, lookup.backup_id(ctx, slug, backup_id))
    if to is not None:
        _clone(c, slug, to, info, host=host, wait=wait)
        return
    deletion.refuse_deleted(ctx, slug, "restore in place")
    spec = ctx.specs.load(slug)
    if not yes:
        taken = info.taken_at.astimezone(UTC)
        typer.confirm(
            f"Restore {spec.name} ({slug}) in place from backup {info.backup_id}, taken "
            f"{taken:%Y-%m-%d %H:%M} UTC ({_age(datetime.now(UTC) - taken)} ago)? The app "
            "stops while its data is switched; what is written after the backup is replaced "
            "(the current data is kept as retired until --confirm-drop).",
            abort=True,
        )
    fresh = restores.restore_params(ctx, spec, info.backup_id, datetime.now(UTC))
    params = interrupted.resume_params(ctx, slug, "restore", fresh)
    _run_each(ctx, "restore", [spec], concurrency=1, wait=wait, params=params, verbose=verbosity(c))
    retired = [params["retired_database"], params.get("files_retired")]
    console.print(
        f"the previous data is kept as {', '.join(r for r in retired if r)}: "
        f"`osp-ops backup restore {slug} --confirm-drop` drops it"
    )


def _age(delta: timedelta) -> str:
    """A duration as a person reads it: ``3 days 4 h``, ``2 h 5 min``, ``12 min``."""
    minutes = max(0, int(delta.total_seconds() // 60))
    days, hours, mins = minutes // 1440, minutes // 60 % 24, minutes % 60
    if days:
        return f"{days} day{'s' if days > 1 else ''}" + (f" {hours} h" if hours else "")
    return f"{hours} h {mins} min" if hours else f"{mins} min"


def _clone(
    c: typer.Context, source: str, slug: str, info: BackupInfo, *, host: str | None, wait: float
) -> None:
    """Create tenant ``slug`` from ``source``'s spec, then restore the backup into it."""
    ctx = context(c)
    if ctx.specs.exists(slug):
        spec = ctx.specs.load(slug)
        if spec.labels.get(restores.CLONE_LABEL) != source:
            raise SpecError(
                [Problem("--to", f"tenant {slug!r} exists and is not a clone of {source!r}")],
                subject="command",
            )
        console.print(f"{ctx.specs.path(slug)} exists: continuing the clone")
    else:
        spec = restores.clone_spec(ctx, ctx.specs.load(source), slug, backup=info, host=host)
        ctx.specs.check_against_fleet(spec)
        console.print(f"wrote {ctx.specs.write(spec)}")
    op, created = request_converge(ctx, spec)
    if op.kind in ("create", "apply", "upgrade"):
        result = run_inline(ctx, op, created=created, wait=wait, verbose=verbosity(c))
        console.print(f"{result.kind} {slug}: {result.status}")
    fresh = restores.restore_params(
        ctx, spec, info.backup_id, datetime.now(UTC), source_tenant=source
    )
    params = interrupted.resume_params(ctx, slug, "restore", fresh)
    _run_each(ctx, "restore", [spec], concurrency=1, wait=wait, params=params, verbose=verbosity(c))
    restores.drop_retired(ctx, spec)  # what the restore replaced was the clone's empty start
    health = ctx.platform(spec).health(spec=spec)
    console.print(f"{slug} is a copy of {source} backup {info.backup_id}: {health.url}")
    console.print(f"admin login: osp-ops tenant credentials {slug}")


@app.command("recovery-key")
def recovery_key(c: typer.Context) -> None:
    """Make the ops recovery key (the second recipient of every backup) unless one is set:
    its secret half goes to <data_dir>/recovery.key, to be moved offline."""
    key = ensure_recovery_key(context(c).settings)
    console.print(f"recovery public key: {key.public}", markup=False)
    if key.secret_file is not None:
        console.print(
            f"Move {key.secret_file} offline now (print it, or keep it on a token or in a "
            "safe) and delete it here: with the backup store, it reads every backup.",
            markup=False,
        )


@app.command("list-retired")
def list_retired(
    c: typer.Context,
    slug: Annotated[str, slug_argument("Tenant.")],
    json_: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Databases and file directories restores switched away from (kept until dropped)."""
    ctx = context(c)
    names = restores.retired_databases(ctx, ctx.specs.load(slug))
    if json_:
        print_json({"tenant": slug, "retired": names})
        return
    for name in names:
        console.print(name, markup=False)


@app.command()
def prune(
    c: typer.Context,
    slug: Slug = None,
    all_: All = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only say what would go.")] = False,
    wait: Wait = 0.0,
) -> None:
    """Delete the backups the spec's retention does not keep (never the newest verified)."""
    ctx = context(c)
    specs = _specs(ctx, slug, all_)
    _run_each(
        ctx,
        "prune",
        specs,
        concurrency=1,
        wait=wait,
        params={"dry_run": dry_run},
        verbose=verbosity(c),
    )


@app.command()
def drill(
    c: typer.Context,
    slug: Slug = None,
    all_: All = False,
    backup_id: Annotated[
        str | None,
        typer.Option(
            "--backup", help="Backup id or a unique prefix; the latest complete if unset."
        ),
    ] = None,
    wait: Wait = 0.0,
) -> None:
    """Restore the latest backup (or `--backup`) into a scratch database, compare row
    counts, record RTO."""
    ctx = context(c)
    if all_ and backup_id:
        raise SpecError([Problem("--backup", "names one backup: give a slug")], subject="command")
    specs = _live(ctx, _specs(ctx, slug, all_), slug, "drill")
    if not specs:
        console.print("no tenant to drill")
        return
    chosen = lookup.backup_id(ctx, specs[0].slug, backup_id) if backup_id else None
    params = {"backup_id": chosen} if chosen else None
    _run_each(ctx, "drill", specs, concurrency=1, wait=wait, params=params, verbose=verbosity(c))


app.command("drills")(drills.drills)  # after `drill` in the help
