"""escalations (one mention pushed into an incident once), mention sightings (engagement growth) and sentiment corrections

Revision ID: 0007
Revises: 0005
Create Date: 2026-12-03 20:34:26.518889
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.base

revision: str = '0007'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('escalations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('mention_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('figures', models.base.JSONData, nullable=False),
    sa.Column('created_at', models.base.UTCDateTime(), nullable=False),
    sa.Column('posted_at', models.base.UTCDateTime(), nullable=True),
    sa.Column('channel_id', sa.String(length=32), nullable=True),
    sa.Column('slack_ts', sa.String(length=32), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_escalations_incident_id_incidents'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['mention_id'], ['mentions.id'], name=op.f('fk_escalations_mention_id_mentions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_escalations')),
    sa.UniqueConstraint('incident_id', 'mention_id', name=op.f('uq_escalations_incident_id_mention_id'))
    )
    with op.batch_alter_table('escalations', schema=None) as batch_op:
        batch_op.create_index('ix_escalations_incident_status_created', ['incident_id', 'status', 'created_at'], unique=False)

    op.create_table('mention_sightings',
    sa.Column('mention_id', sa.Integer(), nullable=False),
    sa.Column('engagement', sa.BigInteger(), nullable=False),
    sa.Column('seen_at', models.base.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['mention_id'], ['mentions.id'], name=op.f('fk_mention_sightings_mention_id_mentions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('mention_id', name=op.f('pk_mention_sightings'))
    )
    op.create_table('sentiment_corrections',
    sa.Column('mention_id', sa.Integer(), nullable=False),
    sa.Column('label', sa.String(length=10), nullable=False),
    sa.Column('model_label', sa.String(length=10), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=True),
    sa.Column('corrected_by', sa.String(length=32), nullable=False),
    sa.Column('corrected_at', models.base.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_sentiment_corrections_incident_id_incidents'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['mention_id'], ['mentions.id'], name=op.f('fk_sentiment_corrections_mention_id_mentions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('mention_id', name=op.f('pk_sentiment_corrections'))
    )


def downgrade() -> None:
    op.drop_table('sentiment_corrections')
    op.drop_table('mention_sightings')
    with op.batch_alter_table('escalations', schema=None) as batch_op:
        batch_op.drop_index('ix_escalations_incident_status_created')

    op.drop_table('escalations')
