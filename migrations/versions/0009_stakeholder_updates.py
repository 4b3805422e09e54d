"""stakeholder updates: where each approved update was posted, and the overdue-update reminders

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 20:45:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.base

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'stakeholder_posts',
        sa.Column('draft_id', sa.Integer(), nullable=False),
        sa.Column('incident_id', sa.Integer(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('channel_ref', sa.String(length=90), nullable=True),
        sa.Column('channel_id', sa.String(length=32), nullable=True),
        sa.Column('ts', sa.String(length=32), nullable=True),
        sa.Column('claimed_at', models.base.UTCDateTime(), nullable=False),
        sa.Column('posted_at', models.base.UTCDateTime(), nullable=True),
        sa.Column('error', sa.Text(), nullable=True),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('claimed_by', sa.String(length=80), nullable=True),
        sa.ForeignKeyConstraint(['draft_id'], ['drafts.id'], name=op.f('fk_stakeholder_posts_draft_id_drafts'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'],
                                name=op.f('fk_stakeholder_posts_incident_id_incidents'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('draft_id', name=op.f('pk_stakeholder_posts')),
    )
    op.create_index(op.f('ix_stakeholder_posts_incident_id'), 'stakeholder_posts', ['incident_id'], unique=False)
    op.create_table(
        'update_reminders',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('incident_id', sa.Integer(), nullable=False),
        sa.Column('due_at', models.base.UTCDateTime(), nullable=False),
        sa.Column('reminded_at', models.base.UTCDateTime(), nullable=False),
        sa.Column('slack_ts', sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'],
                                name=op.f('fk_update_reminders_incident_id_incidents'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_update_reminders')),
        sa.UniqueConstraint('incident_id', 'due_at', name=op.f('uq_update_reminders_incident_id_due_at')),
    )


def downgrade() -> None:
    op.drop_table('update_reminders')
    op.drop_index(op.f('ix_stakeholder_posts_incident_id'), table_name='stakeholder_posts')
    op.drop_table('stakeholder_posts')
