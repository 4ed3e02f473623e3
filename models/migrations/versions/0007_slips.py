"""due changes: every change of a milestone's due date, for the slip log

One row per change seen: in the plan file (``where = 'plan'``, detected between runs by
comparing the due date a run reads with the last one recorded) or, later, in a tracker.
The first due date recorded for a milestone has no ``from_due``: it is where the log
starts, not a slip. Dates are kept as the plan writes them (ISO date or datetime).

Revision ID: 0007_slips
Revises: 0006
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_slips"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "due_changes",
        sa.Column("plan", sa.String(length=500), nullable=False),
        sa.Column("milestone", sa.String(length=300), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("where", sa.String(length=300), nullable=False),
        sa.Column("from_due", sa.String(length=40), nullable=True),
        sa.Column("to_due", sa.String(length=40), nullable=True),
        sa.PrimaryKeyConstraint("plan", "milestone", "at", "where"),
    )


def downgrade() -> None:
    op.drop_table("due_changes")
