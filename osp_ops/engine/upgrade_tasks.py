"""The one-time tasks of an upgrade hop, each run recorded per tenant (store/task_runs.py).

Step ``upgrade-tasks@<version>`` runs, after the hop's migrations, the catalog's tasks of
the releases the hop enters, in order, through the platform (``run_task`` with the
task's command). Each run is recorded before it starts and when it ends, with its
output. On a resume the runs that succeeded are skipped; a rerunnable task that failed
or was cut off runs again; a task that cannot be rerun and was cut off while running
stops the upgrade for a person to look at (its record says so).
"""

from __future__ import annotations

from osp_ops.domain.errors import PlatformError
from osp_ops.domain.redaction import redact
from osp_ops.engine.steps import StepContext
from osp_ops.store.task_runs import TaskRuns

OUTPUT_LIMIT = 20_000


def _origin(sc: StepContext, version: str) -> str:
    """The version the hop to ``version`` starts from (the operation's path)."""
    chain = [str(sc.params["from"]), *(str(v) for v in sc.params["path"])]
    if version not in chain[1:]:
        raise PlatformError(f"{version} is not on this upgrade's path {' → '.join(chain)}")
    return chain[chain.index(version, 1) - 1]


def task_name(version: str, n: int) -> str:
    """A DNS-safe name of the n-th task of the hop to ``version`` (a Job's name part)."""
    return f"upgrade-{version.replace('.', '-')}-{n}"


def run_upgrade_tasks(sc: StepContext) -> str:
    """Run the hop's one-time tasks that have not succeeded yet, recording each run."""
    version = sc.version
    origin = _origin(sc, version)
    tasks = sc.ctx.catalog.app(sc.spec.app.name).hop_tasks(origin, version)
    runs = TaskRuns(sc.ctx.db)
    done = skipped = 0
    for n, task in enumerate(tasks, start=1):
        run_id = f"{sc.op.id}/{version}/{n}"
        command = " ".join(task.command)
        before = runs.get(run_id)
        if before is not None and before.status == "succeeded":
            skipped += 1
            continue
        if before is not None and before.status == "running" and not task.rerunnable:
            raise PlatformError(
                f"one-time task {command} ({task.version}) was cut off while it ran and "
                "cannot be rerun safely: check its effect by hand (`osp-ops upgrade history "
                f"{sc.spec.slug}`)"
            )
        runs.start(
            run_id,
            tenant=sc.spec.slug,
            operation_id=sc.op.id,
            hop=(origin, version),
            task_version=task.version,
            command=command,
            rerunnable=task.rerunnable,
        )
        try:
            result = sc.platform.run_task(
                spec=sc.spec,
                version=version,
                task=task_name(version, n),
                secrets=sc.secrets(),
                reporter=sc.report,
                command=task.command,
            )
        except Exception as e:
            runs.finish(run_id, ok=False, output=redact(str(e))[-OUTPUT_LIMIT:])
            raise
        runs.finish(run_id, ok=result.ok, output=redact(result.output)[-OUTPUT_LIMIT:])
        if not result.ok:
            raise PlatformError(
                f"one-time task {command} ({task.version}) failed for {sc.spec.slug}: "
                f"{redact(result.output)[-500:]}"
            )
        done += 1
    return f"{done} one-time tasks ran" + (f", {skipped} had run before" if skipped else "")
