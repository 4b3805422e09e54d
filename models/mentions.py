"""Brand mentions from the internet, and what War Room derives from them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Float, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utcnow


class Mention(Base):
    """One post, stored once per platform + external id. Its text is untrusted."""

    __tablename__ = "mentions"
    __table_args__ = (
        UniqueConstraint("platform", "external_id"),
        Index("ix_mentions_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(String(40))
    external_id: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(String(2000))
    author: Mapped[str | None] = mapped_column(String(200))
    author_followers: Mapped[int] = mapped_column(BigInteger, default=0)
    likes: Mapped[int] = mapped_column(BigInteger, default=0)
    shares: Mapped[int] = mapped_column(BigInteger, default=0)
    replies: Mapped[int] = mapped_column(BigInteger, default=0)
    lang: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime]
    ingested_at: Mapped[datetime] = mapped_column(default=utcnow)
    source: Mapped[str] = mapped_column(String(20), default="webhook")
    sentiment_label: Mapped[str] = mapped_column(String(10))
    sentiment_score: Mapped[float] = mapped_column(Float)


class Digest(Base):
    """A digest posted into an incident channel: its window, its figures, where it went."""

    __tablename__ = "digests"
    __table_args__ = (
        UniqueConstraint("incident_id", "kind", "window_end"),
        Index("ix_digests_incident_posted", "incident_id", "posted_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16), default="scheduled")
    window_start: Mapped[datetime]
    window_end: Mapped[datetime]
    posted_at: Mapped[datetime] = mapped_column(default=utcnow)
    requested_by: Mapped[str | None] = mapped_column(String(32))
    figures: Mapped[dict[str, Any]] = mapped_column(default=dict)
    channel_id: Mapped[str | None] = mapped_column(String(32))
    slack_ts: Mapped[str | None] = mapped_column(String(32))
    error: Mapped[str | None] = mapped_column(Text)


class FeedCursor(Base):
    """Where a poller left off in one feed (ETag, Last-Modified, Mastodon since_id…)."""

    __tablename__ = "feed_cursors"

    id: Mapped[int] = mapped_column(primary_key=True)
    feed_key: Mapped[str] = mapped_column(String(500), unique=True)
    cursor: Mapped[dict[str, Any]] = mapped_column(default=dict)
    polled_at: Mapped[datetime | None]
    next_poll_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)


class SpikeAlert(Base):
    """A brand-wide spike alert; the latest one enforces the cooldown across processes."""

    __tablename__ = "spike_alerts"

    id: Mapped[int] = mapped_column(primary_key=True)
    window_end: Mapped[datetime] = mapped_column(unique=True)
    fired_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    figures: Mapped[dict[str, Any]] = mapped_column(default=dict)
    channel_id: Mapped[str | None] = mapped_column(String(32))
    slack_ts: Mapped[str | None] = mapped_column(String(32))
