"""plan marks: what the last run published, for events and alerts on changes only

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "plan_marks",
        sa.Column("plan", sa.String(length=200), nullable=False),
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("value", sa.String(length=100), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("notified", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("plan", "key"),
    )


def downgrade() -> None:
    op.drop_table("plan_marks")
