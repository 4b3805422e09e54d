"""Drafted public replies and their approval."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, utcnow

# Draft.status values. `requested` while the LLM works; a decision moves
# `pending` to `approved` or `rejected` exactly once (compare-and-set on status).
REQUESTED, PENDING, APPROVED, REJECTED, FAILED, SUPERSEDED = (
    "requested", "pending", "approved", "rejected", "failed", "superseded",
)


class Draft(Base):
    __tablename__ = "drafts"
    __table_args__ = (Index("ix_drafts_incident_status", "incident_id", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    request_key: Mapped[str | None] = mapped_column(String(120), unique=True)
    platform: Mapped[str] = mapped_column(String(20))
    request: Mapped[str] = mapped_column(Text)
    reply_to_url: Mapped[str | None] = mapped_column(String(2000))
    mention_id: Mapped[int | None] = mapped_column(ForeignKey("mentions.id", ondelete="SET NULL"))
    requested_by: Mapped[str] = mapped_column(String(32))
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    text: Mapped[str | None] = mapped_column(Text)
    strategy: Mapped[str | None] = mapped_column(String(20))
    rationale: Mapped[str | None] = mapped_column(Text)
    concerns: Mapped[dict[str, Any]] = mapped_column(default=dict)
    model: Mapped[str | None] = mapped_column(String(100))
    source: Mapped[str] = mapped_column(String(10), default="llm")
    status: Mapped[str] = mapped_column(String(16), default=REQUESTED)
    error: Mapped[str | None] = mapped_column(Text)
    decided_by: Mapped[str | None] = mapped_column(String(32))
    decided_at: Mapped[datetime | None]
    reason: Mapped[str | None] = mapped_column(Text)
    final_text: Mapped[str | None] = mapped_column(Text)
    superseded_by: Mapped[int | None] = mapped_column(ForeignKey("drafts.id", ondelete="SET NULL"))
    channel_id: Mapped[str | None] = mapped_column(String(32))
    slack_ts: Mapped[str | None] = mapped_column(String(32))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # How many texts the draft has had (its DraftRevision rows): every change of text adds one in the
    # same UPDATE, so a click can name the revision it was shown and be compared-and-set against it.
    revision: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    revisions: Mapped[list[DraftRevision]] = relationship(order_by="DraftRevision.id")


class DraftRevision(Base):
    """Each text a draft has had: the model's, every edit, kept in order."""

    __tablename__ = "draft_revisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    draft_id: Mapped[int] = mapped_column(ForeignKey("drafts.id", ondelete="CASCADE"), index=True)
    text: Mapped[str] = mapped_column(Text)
    author: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(16), default="edit")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
