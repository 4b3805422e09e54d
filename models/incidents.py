"""Incidents and what happens in their war room: roles, timeline, decisions, facts, messages, rumours."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, utcnow

# Incident.status values. `opening` while the channel is being set up; an open
# that failed half-way stays `opening` with `open_error` set, and retrying the
# same /crisis open resumes it instead of creating a second incident.
OPENING, OPEN, RESOLVED = "opening", "open", "resolved"


class Incident(Base):
    __tablename__ = "incidents"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    severity: Mapped[str] = mapped_column(String(8))
    playbook: Mapped[str | None] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(16), default=OPENING, index=True)
    open_error: Mapped[str | None] = mapped_column(Text)
    # Heartbeat of the process running the open: refreshed at each step. An open that has been
    # silent for long (its process died mid-open) may be taken over by a retry.
    open_attempt_at: Mapped[datetime | None]
    # What makes two open requests "the same": Slack retries and double submissions
    # carry the same key, so the unique constraint refuses a second incident.
    request_key: Mapped[str | None] = mapped_column(String(120), unique=True)
    channel_id: Mapped[str | None] = mapped_column(String(32), unique=True)
    channel_name: Mapped[str | None] = mapped_column(String(80))
    brief_ts: Mapped[str | None] = mapped_column(String(32))
    opened_by: Mapped[str] = mapped_column(String(32))
    opened_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[str | None] = mapped_column(String(32))
    summary: Mapped[str | None] = mapped_column(Text)
    next_digest_at: Mapped[datetime | None]
    # A practice incident opened by a drill (`warroom drill`): its messages and its export say DRILL.
    is_drill: Mapped[bool] = mapped_column(default=False, server_default=false())

    roles: Mapped[list[RoleAssignment]] = relationship(
        back_populates="incident", order_by="RoleAssignment.id"
    )


class RoleAssignment(Base):
    """Who held which role and when; reassigning ends the row instead of changing it."""

    __tablename__ = "role_assignments"
    __table_args__ = (Index("ix_role_assignments_incident_role", "incident_id", "role", "ended_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(30))
    user_id: Mapped[str] = mapped_column(String(32))
    assigned_by: Mapped[str] = mapped_column(String(32))
    assigned_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None]
    ended_by: Mapped[str | None] = mapped_column(String(32))

    incident: Mapped[Incident] = relationship(back_populates="roles")


class TimelineEvent(Base):
    """Append-only: every state change of an incident, with who and when."""

    __tablename__ = "timeline_events"
    __table_args__ = (Index("ix_timeline_events_incident_at", "incident_id", "at", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str | None] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(40))
    text: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Set when a queued job records this change ("job:<id>:<kind>"): a job run again after its worker
    # died between committing and finishing finds the change already made and does not make it twice.
    request_key: Mapped[str | None] = mapped_column(String(120), unique=True)


class Decision(Base):
    __tablename__ = "decisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(30), default="decision")
    text: Mapped[str] = mapped_column(Text)
    decided_by: Mapped[str] = mapped_column(String(32))
    decided_at: Mapped[datetime] = mapped_column(default=utcnow)


class _AddedText:
    """The columns of a text the room agreed on: the incident, the words, who added them and when."""

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    text: Mapped[str] = mapped_column(Text)
    added_by: Mapped[str] = mapped_column(String(32))
    added_at: Mapped[datetime] = mapped_column(default=utcnow)


class Fact(_AddedText, Base):
    """A confirmed fact; drafts may rely on it."""

    __tablename__ = "facts"


class KeyMessage(_AddedText, Base):
    """Agreed wording that every reply should stay consistent with."""

    __tablename__ = "key_messages"


# Rumour.status values.
RUMOUR_OPEN, REFUTED, CONFIRMED, DISMISSED = "open", "refuted", "confirmed", "dismissed"


class Rumour(Base):
    __tablename__ = "rumours"

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    claim: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=RUMOUR_OPEN)
    outcome: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_by: Mapped[str | None] = mapped_column(String(32))
    decided_at: Mapped[datetime | None]
    slack_ts: Mapped[str | None] = mapped_column(String(32))


class SlackUser(Base):
    """Display names from users.info, cached for exports."""

    __tablename__ = "slack_users"
    __table_args__ = (UniqueConstraint("user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(120))
    real_name: Mapped[str | None] = mapped_column(String(200))
    fetched_at: Mapped[datetime] = mapped_column(default=utcnow)
