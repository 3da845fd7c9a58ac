"""audit_head: the first row chained with the audit key, and the head's own MAC

Revision ID: 0004
Revises: 0003

Rows written before this migration keep their SHA-256 links (no key is at hand here);
the next append chains with the audit key from the row after them, seals the head and
writes the first anchor (osp_ops/store/audit.py).
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_head", schema=None) as batch_op:
        batch_op.add_column(sa.Column("mac_from", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("mac", sa.String(length=64), nullable=True))
    op.execute("UPDATE audit_head SET mac_from = last_id + 1")


def downgrade() -> None:
    with op.batch_alter_table("audit_head", schema=None) as batch_op:
        batch_op.drop_column("mac")
        batch_op.drop_column("mac_from")
