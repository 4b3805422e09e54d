"""catch-up marks: when each person last caught up on an incident, and their join catch-up (once)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 20:40:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from models.base import UTCDateTime

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'catchup_marks',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('incident_id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.String(length=32), nullable=False),
        sa.Column('seen_at', UTCDateTime(), nullable=True),
        sa.Column('join_job', sa.String(length=40), nullable=True),
        sa.Column('join_sent_at', UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'],
                                name=op.f('fk_catchup_marks_incident_id_incidents'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_catchup_marks')),
        sa.UniqueConstraint('incident_id', 'user_id', name=op.f('uq_catchup_marks_incident_id_user_id')),
    )


def downgrade() -> None:
    op.drop_table('catchup_marks')
