"""merge the two 0009 heads (declarations, tracker due changes) into one line

Both were written from 0008_merge at once; this revision changes no table. A store at both
heads upgrades to it with an empty step; later migrations build on it.

Revision ID: 0010_merge
Revises: 0009_declarations, 0009_tracker_due_changes
Create Date: 2026-12-07
"""

revision = "0010_merge"
down_revision = ("0009_declarations", "0009_tracker_due_changes")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
