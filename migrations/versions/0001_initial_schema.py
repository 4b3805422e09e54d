"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-21 03:13:07.814098
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.base

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('feed_cursors',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('feed_key', sa.String(length=500), nullable=False),
    sa.Column('cursor', models.base.JSONData, nullable=False),
    sa.Column('polled_at', models.base.UTCDateTime(), nullable=True),
    sa.Column('next_poll_at', models.base.UTCDateTime(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_feed_cursors')),
    sa.UniqueConstraint('feed_key', name=op.f('uq_feed_cursors_feed_key'))
    )
    op.create_table('incidents',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('severity', sa.String(length=8), nullable=False),
    sa.Column('playbook', sa.String(length=40), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('open_error', sa.Text(), nullable=True),
    sa.Column('open_attempt_at', models.base.UTCDateTime(), nullable=True),
    sa.Column('request_key', sa.String(length=120), nullable=True),
    sa.Column('channel_id', sa.String(length=32), nullable=True),
    sa.Column('channel_name', sa.String(length=80), nullable=True),
    sa.Column('brief_ts', sa.String(length=32), nullable=True),
    sa.Column('opened_by', sa.String(length=32), nullable=False),
    sa.Column('opened_at', models.base.UTCDateTime(), nullable=False),
    sa.Column('resolved_at', models.base.UTCDateTime(), nullable=True),
    sa.Column('resolved_by', sa.String(length=32), nullable=True),
    sa.Column('summary', sa.Text(), nullable=True),
    sa.Column('next_digest_at', models.base.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incidents')),
    sa.UniqueConstraint('channel_id', name=op.f('uq_incidents_channel_id')),
    sa.UniqueConstraint('request_key', name=op.f('uq_incidents_request_key'))
    )
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_incidents_opened_at'), ['opened_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_incidents_status'), ['status'], unique=False)

    op.create_table('jobs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('payload', models.base.JSONData, nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('created_at', models.base.UTCDateTime(), nullable=False),
    sa.Column('available_at', models.base.UTCDateTime(), nullable=False),
    sa.Column('claimed_by', sa.String(length=80), nullable=True),
    sa.Column('claimed_at', models.base.UTCDateTime(), nullable=True),
    sa.Column('finished_at', models.base.UTCDateTime(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_jobs'))
    )
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.create_index('ix_jobs_status_available', ['status', 'available_at', 'id'], unique=False)

    op.create_table('mentions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('platform', sa.String(length=40), nullable=False),
    sa.Column('external_id', sa.String(length=200), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('url', sa.String(length=2000), nullable=True),
    sa.Column('author', sa.String(length=200), nullable=True),
    sa.Column('author_followers', sa.BigInteger(), nullable=False),
    sa.Column('likes', sa.BigInteger(), nullable=False),
    sa.Column('shares', sa.BigInteger(), nullable=False),
    sa.Column('replies', sa.BigInteger(), nullable=False),
    sa.Column('lang', sa.String(length=16), nullable=True),
    sa.Column('created_at', models.base.UTCDateTime(), nullable=False),
    sa.Column('ingested_at', models.base.UTCDateTime(), nullable=False),
    sa.Column('source', sa.String(length=20), nullable=False),
    sa.Column('sentiment_label', sa.String(length=10), nullable=False),
    sa.Column('sentiment_score', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mentions')),
    sa.UniqueConstraint('platform', 'external_id', name=op.f('uq_mentions_platform_external_id'))
    )
    with op.batch_alter_table('mentions', schema=None) as batch_op:
        batch_op.create_index('ix_mentions_created_at', ['created_at'], unique=False)

    op.create_table('slack_users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('real_name', sa.String(length=200), nullable=True),
    sa.Column('fetched_at', models.base.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_slack_users')),
    sa.UniqueConstraint('user_id', name=op.f('uq_slack_users_user_id'))
    )
    op.create_table('spike_alerts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('window_end', models.base.UTCDateTime(), nullable=False),
    sa.Column('fired_at', models.base.UTCDateTime(), nullable=False),
    sa.Column('figures', models.base.JSONData, nullable=False),
    sa.Column('channel_id', sa.String(length=32), nullable=True),
    sa.Column('slack_ts', sa.String(length=32), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_spike_alerts')),
    sa.UniqueConstraint('window_end', name=op.f('uq_spike_alerts_window_end'))
    )
    with op.batch_alter_table('spike_alerts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_spike_alerts_fired_at'), ['fired_at'], unique=False)

    op.create_table('decisions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=30), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('decided_by', sa.String(length=32), nullable=False),
    sa.Column('decided_at', models.base.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_decisions_incident_id_incidents'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_decisions'))
    )
    with op.batch_alter_table('decisions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_decisions_incident_id'), ['incident_id'], unique=False)

    op.create_table('digests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('window_start', models.base.UTCDateTime(), nullable=False),
    sa.Column('window_end', models.base.UTCDateTime(), nullable=False),
    sa.Column('posted_at', models.base.UTCDateTime(), nullable=False),
    sa.Column('requested_by', sa.String(length=32), nullable=True),
    sa.Column('figures', models.base.JSONData, nullable=False),
    sa.Column('channel_id', sa.String(length=32), nullable=True),
    sa.Column('slack_ts', sa.String(length=32), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_digests_incident_id_incidents'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_digests')),
    sa.UniqueConstraint('incident_id', 'kind', 'window_end', name=op.f('uq_digests_incident_id_kind_window_end'))
    )
    with op.batch_alter_table('digests', schema=None) as batch_op:
        batch_op.create_index('ix_digests_incident_posted', ['incident_id', 'posted_at'], unique=False)

    op.create_table('drafts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('request_key', sa.String(length=120), nullable=True),
    sa.Column('platform', sa.String(length=20), nullable=False),
    sa.Column('request', sa.Text(), nullable=False),
    sa.Column('reply_to_url', sa.String(length=2000), nullable=True),
    sa.Column('mention_id', sa.Integer(), nullable=True),
    sa.Column('requested_by', sa.String(length=32), nullable=False),
    sa.Column('requested_at', models.base.UTCDateTime(), nullable=False),
    sa.Column('text', sa.Text(), nullable=True),
    sa.Column('strategy', sa.String(length=20), nullable=True),
    sa.Column('rationale', sa.Text(), nullable=True),
    sa.Column('concerns', models.base.JSONData, nullable=False),
    sa.Column('model', sa.String(length=100), nullable=True),
    sa.Column('source', sa.String(length=10), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('decided_by', sa.String(length=32), nullable=True),
    sa.Column('decided_at', models.base.UTCDateTime(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('final_text', sa.Text(), nullable=True),
    sa.Column('superseded_by', sa.Integer(), nullable=True),
    sa.Column('channel_id', sa.String(length=32), nullable=True),
    sa.Column('slack_ts', sa.String(length=32), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_drafts_incident_id_incidents'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['mention_id'], ['mentions.id'], name=op.f('fk_drafts_mention_id_mentions'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['superseded_by'], ['drafts.id'], name=op.f('fk_drafts_superseded_by_drafts'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_drafts')),
    sa.UniqueConstraint('request_key', name=op.f('uq_drafts_request_key'))
    )
    with op.batch_alter_table('drafts', schema=None) as batch_op:
        batch_op.create_index('ix_drafts_incident_status', ['incident_id', 'status'], unique=False)

    op.create_table('facts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('added_by', sa.String(length=32), nullable=False),
    sa.Column('added_at', models.base.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_facts_incident_id_incidents'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_facts'))
    )
    with op.batch_alter_table('facts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_facts_incident_id'), ['incident_id'], unique=False)

    op.create_table('key_messages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('added_by', sa.String(length=32), nullable=False),
    sa.Column('added_at', models.base.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_key_messages_incident_id_incidents'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_key_messages'))
    )
    with op.batch_alter_table('key_messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_key_messages_incident_id'), ['incident_id'], unique=False)

    op.create_table('role_assignments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('role', sa.String(length=30), nullable=False),
    sa.Column('user_id', sa.String(length=32), nullable=False),
    sa.Column('assigned_by', sa.String(length=32), nullable=False),
    sa.Column('assigned_at', models.base.UTCDateTime(), nullable=False),
    sa.Column('ended_at', models.base.UTCDateTime(), nullable=True),
    sa.Column('ended_by', sa.String(length=32), nullable=True),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_role_assignments_incident_id_incidents'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_role_assignments'))
    )
    with op.batch_alter_table('role_assignments', schema=None) as batch_op:
        batch_op.create_index('ix_role_assignments_incident_role', ['incident_id', 'role', 'ended_at'], unique=False)

    op.create_table('rumours',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('claim', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('outcome', sa.Text(), nullable=True),
    sa.Column('created_by', sa.String(length=32), nullable=False),
    sa.Column('created_at', models.base.UTCDateTime(), nullable=False),
    sa.Column('decided_by', sa.String(length=32), nullable=True),
    sa.Column('decided_at', models.base.UTCDateTime(), nullable=True),
    sa.Column('slack_ts', sa.String(length=32), nullable=True),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_rumours_incident_id_incidents'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rumours'))
    )
    with op.batch_alter_table('rumours', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_rumours_incident_id'), ['incident_id'], unique=False)

    op.create_table('timeline_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('at', models.base.UTCDateTime(), nullable=False),
    sa.Column('actor', sa.String(length=32), nullable=True),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('data', models.base.JSONData, nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_timeline_events_incident_id_incidents'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_timeline_events'))
    )
    with op.batch_alter_table('timeline_events', schema=None) as batch_op:
        batch_op.create_index('ix_timeline_events_incident_at', ['incident_id', 'at', 'id'], unique=False)

    op.create_table('draft_revisions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('draft_id', sa.Integer(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('author', sa.String(length=32), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('created_at', models.base.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['draft_id'], ['drafts.id'], name=op.f('fk_draft_revisions_draft_id_drafts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_draft_revisions'))
    )
    with op.batch_alter_table('draft_revisions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_draft_revisions_draft_id'), ['draft_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('draft_revisions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_draft_revisions_draft_id'))

    op.drop_table('draft_revisions')
    with op.batch_alter_table('timeline_events', schema=None) as batch_op:
        batch_op.drop_index('ix_timeline_events_incident_at')

    op.drop_table('timeline_events')
    with op.batch_alter_table('rumours', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_rumours_incident_id'))

    op.drop_table('rumours')
    with op.batch_alter_table('role_assignments', schema=None) as batch_op:
        batch_op.drop_index('ix_role_assignments_incident_role')

    op.drop_table('role_assignments')
    with op.batch_alter_table('key_messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_key_messages_incident_id'))

    op.drop_table('key_messages')
    with op.batch_alter_table('facts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_facts_incident_id'))

    op.drop_table('facts')
    with op.batch_alter_table('drafts', schema=None) as batch_op:
        batch_op.drop_index('ix_drafts_incident_status')

    op.drop_table('drafts')
    with op.batch_alter_table('digests', schema=None) as batch_op:
        batch_op.drop_index('ix_digests_incident_posted')

    op.drop_table('digests')
    with op.batch_alter_table('decisions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_decisions_incident_id'))

    op.drop_table('decisions')
    with op.batch_alter_table('spike_alerts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_spike_alerts_fired_at'))

    op.drop_table('spike_alerts')
    op.drop_table('slack_users')
    with op.batch_alter_table('mentions', schema=None) as batch_op:
        batch_op.drop_index('ix_mentions_created_at')

    op.drop_table('mentions')
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_index('ix_jobs_status_available')

    op.drop_table('jobs')
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_incidents_status'))
        batch_op.drop_index(batch_op.f('ix_incidents_opened_at'))

    op.drop_table('incidents')
    op.drop_table('feed_cursors')
