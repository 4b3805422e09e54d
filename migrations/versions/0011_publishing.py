"""publications: approved drafts published to Mastodon or Bluesky, one intent row per draft

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 20:40:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from models.base import UTCDateTime

revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'publications',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('draft_id', sa.Integer(), nullable=False),
        sa.Column('incident_id', sa.Integer(), nullable=False),
        sa.Column('platform', sa.String(length=20), nullable=False),
        sa.Column('account', sa.String(length=300), nullable=False),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('reply_to', sa.String(length=2000), nullable=True),
        sa.Column('idempotency_key', sa.String(length=64), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('external_id', sa.String(length=300), nullable=True),
        sa.Column('url', sa.String(length=2000), nullable=True),
        sa.Column('error', sa.Text(), nullable=True),
        sa.Column('retryable', sa.Boolean(), nullable=False),
        sa.Column('retry_after', UTCDateTime(), nullable=True),
        sa.Column('requested_by', sa.String(length=32), nullable=False),
        sa.Column('requested_at', UTCDateTime(), nullable=False),
        sa.Column('claimed_at', UTCDateTime(), nullable=True),
        sa.Column('published_at', UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(['draft_id'], ['drafts.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('draft_id'),
    )
    op.create_index('ix_publications_incident_id', 'publications', ['incident_id'])


def downgrade() -> None:
    op.drop_index('ix_publications_incident_id', table_name='publications')
    op.drop_table('publications')
