"""assignee changes: who held an item when, for judging at a past as_of

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "assignee_changes",
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("item_key", sa.String(length=200), nullable=False),
        sa.Column("change_id", sa.String(length=200), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("author", sa.String(length=200), nullable=True),
        sa.Column("from_account", sa.String(length=200), nullable=True),
        sa.Column("to_account", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(["source", "item_key"], ["items.source", "items.key"]),
        sa.PrimaryKeyConstraint("source", "item_key", "change_id"),
    )


def downgrade() -> None:
    op.drop_table("assignee_changes")
