"""task_runs: every run of an upgrade's one-time task, per tenant

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "task_runs",
        sa.Column("id", sa.String(length=120), nullable=False),
        sa.Column("tenant", sa.String(length=63), nullable=False),
        sa.Column("operation_id", sa.String(length=40), nullable=False),
        sa.Column("hop_from", sa.String(length=40), nullable=False),
        sa.Column("hop_to", sa.String(length=40), nullable=False),
        sa.Column("task_version", sa.String(length=40), nullable=False),
        sa.Column("command", sa.Text(), nullable=False),
        sa.Column("rerunnable", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("output", sa.Text(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("task_runs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_task_runs_tenant"), ["tenant"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_task_runs_operation_id"), ["operation_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("task_runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_task_runs_operation_id"))
        batch_op.drop_index(batch_op.f("ix_task_runs_tenant"))
    op.drop_table("task_runs")
