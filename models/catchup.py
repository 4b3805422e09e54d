"""When each person last caught up on an incident, and whether they got the catch-up for joining late."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class CatchupMark(Base):
    """One row per person and incident: "since you last looked" starts at `seen_at` (or their last
    action, whichever is later). `join_job` is set once, by the job that sends the catch-up someone
    gets for joining the channel late, so a repeated join event never sends it twice."""

    __tablename__ = "catchup_marks"
    __table_args__ = (UniqueConstraint("incident_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(String(32))
    seen_at: Mapped[datetime | None]
    join_job: Mapped[str | None] = mapped_column(String(40))
    join_sent_at: Mapped[datetime | None]
