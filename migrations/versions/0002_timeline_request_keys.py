"""timeline request keys: a queued job records each change once, even when it is run again

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 07:06:41.831929
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('timeline_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('request_key', sa.String(length=120), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_timeline_events_request_key'), ['request_key'])


def downgrade() -> None:
    with op.batch_alter_table('timeline_events', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_timeline_events_request_key'), type_='unique')
        batch_op.drop_column('request_key')
