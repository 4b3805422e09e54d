"""Stakeholder updates: where each approved update was posted, and the overdue-update reminders sent.

The update itself is a Draft (platform `stakeholder`), approved through the same gate as a public reply.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utcnow

# StakeholderPost.status: `posting` while one worker holds the claim, then `posted` (once) or `failed`
# (the room was told why; *Post update* claims it again).
POSTING, POSTED, POST_FAILED = "posting", "posted", "failed"


class StakeholderPost(Base):
    """The posting of one approved stakeholder update into the plan's `stakeholder_channel`."""

    __tablename__ = "stakeholder_posts"

    draft_id: Mapped[int] = mapped_column(ForeignKey("drafts.id", ondelete="CASCADE"), primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16), default=POSTING)
    channel_ref: Mapped[str | None] = mapped_column(String(90))  # as the plan names it: C… or #name
    channel_id: Mapped[str | None] = mapped_column(String(32))
    ts: Mapped[str | None] = mapped_column(String(32))
    claimed_at: Mapped[datetime] = mapped_column(default=utcnow)
    posted_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # The queued job holding the claim: that job run again (its worker died mid-post) may take it back.
    claimed_by: Mapped[str | None] = mapped_column(String(80))


class UpdateReminder(Base):
    """One reminder that an update is overdue: at most one per incident and due time (the unique key)."""

    __tablename__ = "update_reminders"
    __table_args__ = (UniqueConstraint("incident_id", "due_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    due_at: Mapped[datetime]
    reminded_at: Mapped[datetime] = mapped_column(default=utcnow)
    slack_ts: Mapped[str | None] = mapped_column(String(32))
