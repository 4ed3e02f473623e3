"""unbounded tracker text: status names, display names, authors of any length

A tracker's status name over 200 characters or a display name over 500 failed the sync for
good on PostgreSQL (SQLite never enforced the lengths). Keys stay bounded.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

WIDENED = {
    "items": {"item_type": 100, "status": 200, "assignee": 200, "reporter": 200,
              "parent": 200, "container": 500},
    "status_changes": {"author": 200, "from_status": 200, "to_status": 200},
    "assignee_changes": {"author": 200, "from_account": 200, "to_account": 200},
    "comments": {"author": 200},
    "accounts": {"display_name": 500, "email": 500},
}


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite does not enforce VARCHAR lengths: nothing to change
    for table, columns in WIDENED.items():
        for column, length in columns.items():
            op.alter_column(table, column, type_=sa.Text(), existing_type=sa.String(length))


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, columns in WIDENED.items():
        for column, length in columns.items():
            op.alter_column(table, column, type_=sa.String(length), existing_type=sa.Text())
