"""Publications: an approved draft posted to Mastodon or Bluesky, recorded before the call is made."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utcnow

# Publication.status. `publishing` while one worker holds the call (claimed by compare-and-set);
# `published` with the post's id and link; `failed` when the platform refused (or did not answer and has
# no such post): `retryable` says whether *Retry* can help.
PUBLISHING, PUBLISHED, FAILED = "publishing", "published", "failed"


class Publication(Base):
    """At most one per draft (the unique draft_id is what makes concurrent clicks publish once)."""

    __tablename__ = "publications"

    id: Mapped[int] = mapped_column(primary_key=True)
    draft_id: Mapped[int] = mapped_column(ForeignKey("drafts.id", ondelete="CASCADE"), unique=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    platform: Mapped[str] = mapped_column(String(20))
    account: Mapped[str] = mapped_column(String(300))  # "@handle" or instance + user, never a secret
    text: Mapped[str] = mapped_column(Text)  # the approved text, byte for byte
    reply_to: Mapped[str | None] = mapped_column(String(2000))  # the answered post's URL, if a reply
    # Mastodon: the Idempotency-Key; Bluesky: the record key (TID) the post is created under.
    idempotency_key: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default=PUBLISHING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    external_id: Mapped[str | None] = mapped_column(String(300))
    url: Mapped[str | None] = mapped_column(String(2000))
    error: Mapped[str | None] = mapped_column(Text)
    retryable: Mapped[bool] = mapped_column(Boolean, default=False)
    retry_after: Mapped[datetime | None]
    requested_by: Mapped[str] = mapped_column(String(32))
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    claimed_at: Mapped[datetime | None]
    published_at: Mapped[datetime | None]
