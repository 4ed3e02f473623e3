"""merge the two 0007 heads (measures, slips) into one line

Both were written from 0006 at once; this revision changes no table. A store at both
heads upgrades to it with an empty step; later migrations build on it.

Revision ID: 0008_merge
Revises: 0007_measures, 0007_slips
Create Date: 2026-12-07
"""

revision = "0008_merge"
down_revision = ("0007_measures", "0007_slips")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
