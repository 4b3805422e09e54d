"""Messages about tasks and follow-ups that flows hand to the Slack port (rendered in handlers/render/tasks.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.tasks.followups import FollowUpView
from bot.tasks.tasks import TaskView


@dataclass(frozen=True)
class TaskMessage:
    """A task's one message in the room, updated in place: *Done*, *Take it*, and *Snooze 30m* once overdue."""

    task: TaskView
    now: datetime


@dataclass(frozen=True)
class TaskList:
    """`/crisis tasks`: open and done tasks with owners and due times, and the follow-ups so far."""

    tasks: tuple[TaskView, ...]
    followups: tuple[FollowUpView, ...]
    now: datetime


@dataclass(frozen=True)
class TaskNudge:
    """An overdue task's reminder: to its owner privately (`to_owner`), or to the room."""

    task: TaskView
    to_owner: bool
    channel_id: str | None


@dataclass(frozen=True)
class FollowUpNote:
    """A follow-up was recorded."""

    followup: FollowUpView


@dataclass(frozen=True)
class Handover:
    """After the resolve summary: tasks still open, each with *Follow-up* and *Drop* for the lead."""

    incident_id: int
    tasks: tuple[TaskView, ...]


@dataclass(frozen=True)
class ArchiveNote:
    """Said in the channel before it is archived."""

    days: int


TaskMessages = TaskMessage | TaskList | TaskNudge | FollowUpNote | Handover | ArchiveNote
