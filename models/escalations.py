"""Escalations of single mentions into incidents, the sightings that measure engagement growth, and
monitors' corrections of sentiment."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utcnow

# Escalation.status: pending → posted; or capped (over the hourly cap, summarised in the next digest);
# or dropped (the incident was resolved before it could be posted).
PENDING, POSTED, CAPPED, DROPPED = "pending", "posted", "capped", "dropped"


class Escalation(Base):
    """One mention pushed into one incident: unique per (incident, mention), so a post escalates once."""

    __tablename__ = "escalations"
    __table_args__ = (
        UniqueConstraint("incident_id", "mention_id"),
        Index("ix_escalations_incident_status_created", "incident_id", "status", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    mention_id: Mapped[int] = mapped_column(ForeignKey("mentions.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), default=PENDING)
    # {"reasons": [...], "engagement_per_minute": float | None}
    figures: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    posted_at: Mapped[datetime | None]
    channel_id: Mapped[str | None] = mapped_column(String(32))
    slack_ts: Mapped[str | None] = mapped_column(String(32))
    error: Mapped[str | None] = mapped_column(Text)


class MentionSighting(Base):
    """The latest time a stored post was seen again, and its engagement then (growth is measured from it)."""

    __tablename__ = "mention_sightings"

    mention_id: Mapped[int] = mapped_column(ForeignKey("mentions.id", ondelete="CASCADE"), primary_key=True)
    engagement: Mapped[int] = mapped_column(BigInteger)
    seen_at: Mapped[datetime]


class SentimentCorrection(Base):
    """A monitor's sentiment for a post, kept beside the model's label (one per post; the latest wins)."""

    __tablename__ = "sentiment_corrections"

    mention_id: Mapped[int] = mapped_column(ForeignKey("mentions.id", ondelete="CASCADE"), primary_key=True)
    label: Mapped[str] = mapped_column(String(10))
    model_label: Mapped[str] = mapped_column(String(10))
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id", ondelete="SET NULL"))
    corrected_by: Mapped[str] = mapped_column(String(32))
    corrected_at: Mapped[datetime] = mapped_column(default=utcnow)
