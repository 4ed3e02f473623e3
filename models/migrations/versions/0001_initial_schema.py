"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-26
"""

from alembic import op
import sqlalchemy as sa



revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('accounts',
    sa.Column('source', sa.String(length=100), nullable=False),
    sa.Column('account_id', sa.String(length=200), nullable=False),
    sa.Column('display_name', sa.String(length=500), nullable=True),
    sa.Column('email', sa.String(length=500), nullable=True),
    sa.PrimaryKeyConstraint('source', 'account_id')
    )
    op.create_table('items',
    sa.Column('source', sa.String(length=100), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('title', sa.Text(), nullable=False),
    sa.Column('item_type', sa.String(length=100), nullable=True),
    sa.Column('status', sa.String(length=200), nullable=False),
    sa.Column('status_category', sa.String(length=20), nullable=False),
    sa.Column('assignee', sa.String(length=200), nullable=True),
    sa.Column('reporter', sa.String(length=200), nullable=True),
    sa.Column('created', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated', sa.DateTime(timezone=True), nullable=False),
    sa.Column('resolved', sa.DateTime(timezone=True), nullable=True),
    sa.Column('due', sa.DateTime(timezone=True), nullable=True),
    sa.Column('parent', sa.String(length=200), nullable=True),
    sa.Column('labels', sa.JSON(), nullable=False),
    sa.Column('container', sa.String(length=500), nullable=True),
    sa.Column('points', sa.Float(), nullable=True),
    sa.Column('url', sa.Text(), nullable=True),
    sa.Column('fields', sa.JSON(), nullable=False),
    sa.Column('flags', sa.JSON(), nullable=False),
    sa.Column('removed', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('source', 'key')
    )
    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.create_index('ix_items_source_updated', ['source', 'updated'], unique=False)

    op.create_table('raw_payloads',
    sa.Column('source', sa.String(length=100), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('endpoint', sa.Text(), nullable=False),
    sa.Column('fetched_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('source', 'key')
    )
    op.create_table('selections',
    sa.Column('source', sa.String(length=100), nullable=False),
    sa.Column('selector', sa.String(length=2000), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.PrimaryKeyConstraint('source', 'selector', 'key')
    )
    op.create_table('sources',
    sa.Column('source', sa.String(length=100), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('watermark', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_sync_started', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_sync_finished', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_reconciled', sa.DateTime(timezone=True), nullable=True),
    sa.Column('items_seen', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('source')
    )
    op.create_table('comments',
    sa.Column('source', sa.String(length=100), nullable=False),
    sa.Column('item_key', sa.String(length=200), nullable=False),
    sa.Column('comment_id', sa.String(length=200), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('author', sa.String(length=200), nullable=True),
    sa.Column('body', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['source', 'item_key'], ['items.source', 'items.key'], ),
    sa.PrimaryKeyConstraint('source', 'item_key', 'comment_id')
    )
    op.create_table('status_changes',
    sa.Column('source', sa.String(length=100), nullable=False),
    sa.Column('item_key', sa.String(length=200), nullable=False),
    sa.Column('change_id', sa.String(length=200), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('author', sa.String(length=200), nullable=True),
    sa.Column('from_status', sa.String(length=200), nullable=True),
    sa.Column('to_status', sa.String(length=200), nullable=False),
    sa.Column('from_category', sa.String(length=20), nullable=True),
    sa.Column('to_category', sa.String(length=20), nullable=False),
    sa.ForeignKeyConstraint(['source', 'item_key'], ['items.source', 'items.key'], ),
    sa.PrimaryKeyConstraint('source', 'item_key', 'change_id')
    )



def downgrade() -> None:

    op.drop_table('status_changes')
    op.drop_table('comments')
    op.drop_table('sources')
    op.drop_table('selections')
    op.drop_table('raw_payloads')
    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.drop_index('ix_items_source_updated')

    op.drop_table('items')
    op.drop_table('accounts')

