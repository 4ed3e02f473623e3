"""measure values: the history of each plan measure's numbers (issue 16)

Revision ID: 0007_measures
Revises: 0006
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_measures"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "measure_values",
        sa.Column("plan", sa.String(length=200), nullable=False),
        sa.Column("measure", sa.String(length=300), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("synced_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("plan", "measure", "at"),
    )


def downgrade() -> None:
    op.drop_table("measure_values")
