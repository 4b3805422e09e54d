"""Tasks (from the playbook or `/crisis task`), follow-ups for after the incident, and channel archiving."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utcnow

# Task.status values. `followup` and `dropped` are the lead's choice for a task still open at resolve.
TASK_OPEN, TASK_DONE, TASK_FOLLOWUP, TASK_DROPPED = "open", "done", "followup", "dropped"
# Task.kind: the first approved statement completes a `statement` task.
STATEMENT = "statement"


class Task(Base):
    """One task of an incident, shown as one Slack message updated in place.

    Reminders are state in this row (`next_nudge_at`, and when the owner and the room were nudged), so a
    restarted scheduler finds every due reminder where the last one left it.
    """

    __tablename__ = "tasks"
    __table_args__ = (Index("ix_tasks_status_next_nudge_at", "status", "next_nudge_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    text: Mapped[str] = mapped_column(Text)
    kind: Mapped[str | None] = mapped_column(String(20))
    # The playbook checklist position it came from (None: added with `/crisis task`); unique per incident
    # in practice, so a resumed open never makes the playbook's tasks twice.
    checklist_index: Mapped[int | None]
    owner: Mapped[str | None] = mapped_column(String(32))
    owner_role: Mapped[str | None] = mapped_column(String(30))
    due_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(16), default=TASK_OPEN)
    created_by: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    done_by: Mapped[str | None] = mapped_column(String(32))
    done_at: Mapped[datetime | None]
    channel_id: Mapped[str | None] = mapped_column(String(32))
    slack_ts: Mapped[str | None] = mapped_column(String(32))
    # Reminders: the next one is due at `next_nudge_at` (None: none pending).
    next_nudge_at: Mapped[datetime | None]
    owner_nudged_at: Mapped[datetime | None]
    room_nudged_at: Mapped[datetime | None]
    snoozed_by: Mapped[str | None] = mapped_column(String(32))
    # The lead's choice at resolve for a task still open: a follow-up, or dropped.
    handed_over_by: Mapped[str | None] = mapped_column(String(32))
    handed_over_at: Mapped[datetime | None]


class FollowUp(Base):
    """An action item for after the incident."""

    __tablename__ = "followups"

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    text: Mapped[str] = mapped_column(Text)
    owner: Mapped[str | None] = mapped_column(String(32))
    created_by: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Where it came from: command, decision, rumour or task, and that object's id.
    source: Mapped[str] = mapped_column(String(16), default="command")
    source_id: Mapped[int | None]


class ChannelArchive(Base):
    """An incident channel archived `channel.archive_after_days` after resolve (the note, then the archive)."""

    __tablename__ = "channel_archives"

    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True)
    claimed_at: Mapped[datetime]
    noted_at: Mapped[datetime | None]
    archived_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)
