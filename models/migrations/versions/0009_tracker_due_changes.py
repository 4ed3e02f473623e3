"""tracker due changes: the due dates of the trackers' containers, for the slip log

One row per change of a Jira epic's ``duedate`` (from its changelog, ``origin = 'history'``),
of a GitHub or GitLab milestone's due date (seen by a sync that finds it differs from the
last row, ``origin = 'seen'``: those APIs keep no history), or per ``stratmap push`` that
wrote the plan's due date there (``origin = 'push'``). The engine maps them onto the plan's
milestones that name the container; a first row has no ``from_due``.

Revision ID: 0009_tracker_due_changes
Revises: 0008_merge
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_tracker_due_changes"
down_revision = "0008_merge"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tracker_due_changes",
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("container", sa.String(length=300), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("origin", sa.String(length=20), nullable=False),
        sa.Column("from_due", sa.String(length=40), nullable=True),
        sa.Column("to_due", sa.String(length=40), nullable=True),
        sa.PrimaryKeyConstraint("source", "container", "at", "origin"),
    )


def downgrade() -> None:
    op.drop_table("tracker_due_changes")
