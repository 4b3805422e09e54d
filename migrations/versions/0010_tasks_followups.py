"""tasks (playbook and `/crisis task`, with reminders held in the row), follow-ups, and channel archiving

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 20:32:49.919837
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.base

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('channel_archives',
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('claimed_at', models.base.UTCDateTime(), nullable=False),
    sa.Column('noted_at', models.base.UTCDateTime(), nullable=True),
    sa.Column('archived_at', models.base.UTCDateTime(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_channel_archives_incident_id_incidents'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('incident_id', name=op.f('pk_channel_archives'))
    )
    op.create_table('followups',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('owner', sa.String(length=32), nullable=True),
    sa.Column('created_by', sa.String(length=32), nullable=False),
    sa.Column('created_at', models.base.UTCDateTime(), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('source_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_followups_incident_id_incidents'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_followups'))
    )
    with op.batch_alter_table('followups', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_followups_incident_id'), ['incident_id'], unique=False)

    op.create_table('tasks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=True),
    sa.Column('checklist_index', sa.Integer(), nullable=True),
    sa.Column('owner', sa.String(length=32), nullable=True),
    sa.Column('owner_role', sa.String(length=30), nullable=True),
    sa.Column('due_at', models.base.UTCDateTime(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_by', sa.String(length=32), nullable=False),
    sa.Column('created_at', models.base.UTCDateTime(), nullable=False),
    sa.Column('done_by', sa.String(length=32), nullable=True),
    sa.Column('done_at', models.base.UTCDateTime(), nullable=True),
    sa.Column('channel_id', sa.String(length=32), nullable=True),
    sa.Column('slack_ts', sa.String(length=32), nullable=True),
    sa.Column('next_nudge_at', models.base.UTCDateTime(), nullable=True),
    sa.Column('owner_nudged_at', models.base.UTCDateTime(), nullable=True),
    sa.Column('room_nudged_at', models.base.UTCDateTime(), nullable=True),
    sa.Column('snoozed_by', sa.String(length=32), nullable=True),
    sa.Column('handed_over_by', sa.String(length=32), nullable=True),
    sa.Column('handed_over_at', models.base.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_tasks_incident_id_incidents'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tasks'))
    )
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_tasks_incident_id'), ['incident_id'], unique=False)
        batch_op.create_index('ix_tasks_status_next_nudge_at', ['status', 'next_nudge_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.drop_index('ix_tasks_status_next_nudge_at')
        batch_op.drop_index(batch_op.f('ix_tasks_incident_id'))

    op.drop_table('tasks')
    with op.batch_alter_table('followups', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_followups_incident_id'))

    op.drop_table('followups')
    op.drop_table('channel_archives')
