"""declarations: statuses declared in trackers, for optimistic_status

One row per declaration: a Jira epic's status or health field set (the source's
``declared_status_field``, one row per change in the epic's changelog), or a Linear project
update's ``health``. ``subject`` is the epic's key or the project's name; ``status`` is
``on_track`` or ``at_risk``; ``said`` keeps the tracker's own words.

Revision ID: 0009_declarations
Revises: 0008_merge
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_declarations"
down_revision = "0008_merge"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "declarations",
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("declaration_id", sa.String(length=200), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("author", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("said", sa.Text(), nullable=False),
        sa.Column("where", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("source", "subject", "declaration_id"),
    )


def downgrade() -> None:
    op.drop_table("declarations")
