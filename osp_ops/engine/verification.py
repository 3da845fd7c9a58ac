"""What the state DB knows of a backup's verification, and of its having been completed.

Every verify records its result: ``passed``, ``failed`` (with the problems) or
``damaged`` (manifest missing or unreadable). Prune's "newest verified is kept" rule
counts only backups whose last verify passed; cleanup never deletes a backup the state
DB recorded as completed.
"""

from __future__ import annotations

from osp_ops.backups.manifest import backup_time
from osp_ops.backups.verify import VerifyReport
from osp_ops.engine.context import Context
from osp_ops.store.backups import Backups


def record_verify(ctx: Context, report: VerifyReport) -> None:
    """Record a verify's result (passed, failed with its problems, damaged)."""
    Backups(ctx.db).record_verify(
        tenant=report.tenant,
        backup_id=report.backup_id,
        taken_at=backup_time(report.backup_id).replace(tzinfo=None),
        result=report.result,
        problem="; ".join(report.problems) or None,
    )


def completed_ids(ctx: Context, slug: str) -> set[str]:
    """Backups the state DB knows were completed: never cleaned up, damaged if broken."""
    return Backups(ctx.db).completed_ids(slug)
