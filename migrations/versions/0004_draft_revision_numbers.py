"""draft revision numbers: a click names the revision it was shown, and is refused when the text changed

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 09:00:00.000000
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('drafts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('revision', sa.Integer(), server_default=sa.text('0'), nullable=False))
    # Existing drafts: the revision is the number of texts they have had.
    op.execute("UPDATE drafts SET revision = "
               "(SELECT count(*) FROM draft_revisions WHERE draft_revisions.draft_id = drafts.id)")


def downgrade() -> None:
    with op.batch_alter_table('drafts', schema=None) as batch_op:
        batch_op.drop_column('revision')
