"""backups: the last verify's result, problem and time

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("backups", schema=None) as batch_op:
        batch_op.add_column(sa.Column("verify_result", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("verify_problem", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("verify_at", sa.DateTime(timezone=True), nullable=True))
    # What earlier versions recorded as verified had passed its last verify.
    op.execute(
        "UPDATE backups SET verify_result = 'passed', verify_at = verified_at "
        "WHERE verified_at IS NOT NULL"
    )


def downgrade() -> None:
    with op.batch_alter_table("backups", schema=None) as batch_op:
        batch_op.drop_column("verify_at")
        batch_op.drop_column("verify_problem")
        batch_op.drop_column("verify_result")
