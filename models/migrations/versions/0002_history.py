"""progress history: one snapshot per goal and milestone per run and per past week

Revision ID: 0002
Revises: 0001
Create Date: 2027-03-01
"""

from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('snapshots',
    sa.Column('plan', sa.String(length=500), nullable=False),
    sa.Column('entity', sa.String(length=300), nullable=False),
    sa.Column('as_of', sa.DateTime(timezone=True), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('progress', sa.Float(), nullable=False),
    sa.Column('items_total', sa.Integer(), nullable=False),
    sa.Column('items_done', sa.Integer(), nullable=False),
    sa.Column('points_total', sa.Float(), nullable=True),
    sa.Column('points_done', sa.Float(), nullable=True),
    sa.Column('forecast', sa.DateTime(timezone=True), nullable=True),
    sa.Column('findings', sa.Integer(), nullable=False),
    sa.Column('finding_kinds', sa.JSON(), nullable=False),
    sa.Column('origin', sa.String(length=20), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('plan', 'entity', 'as_of')
    )


def downgrade() -> None:
    op.drop_table('snapshots')
