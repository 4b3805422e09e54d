"""Overdue reminders: the owner is nudged once privately, then the room once.

The state is the task row (`next_nudge_at`, `owner_nudged_at`, `room_nudged_at`), so a restarted
scheduler carries on where the last one stopped. A reminder is claimed with a compare-and-set on
`next_nudge_at`, so two schedulers never both send it, and each claim moves `next_nudge_at` at least
`NUDGE_GAP` on: never more than one reminder per task per 30 minutes. An incident that is resolved
sends none.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.crisis.timeline import record_event
from bot.tasks.tasks import NUDGE_GAP, TASK_NUDGED, TaskView, task_view
from models import Incident, Task, rows_changed
from models.incidents import OPEN
from models.tasks import TASK_OPEN

OWNER, ROOM = "owner", "room"
DUE_BATCH = 200  # reminders claimed per run; the rest wait for the next minute


@dataclass(frozen=True)
class Nudge:
    """A reminder to send: to the task's owner privately, or to the room."""

    task: TaskView
    to: str  # OWNER or ROOM
    incident_channel: str | None


def due_nudges(session: Session, now: datetime) -> list[int]:
    """Ids of open tasks of open incidents whose reminder is due."""
    return list(session.scalars(
        select(Task.id)
        .join(Incident, Incident.id == Task.incident_id)
        .where(Task.status == TASK_OPEN, Task.next_nudge_at.is_not(None), Task.next_nudge_at <= now,
               Incident.status == OPEN)
        .order_by(Task.next_nudge_at, Task.id)
        .limit(DUE_BATCH)
    ))


def claim_nudge(session: Session, task_id: int, now: datetime) -> Nudge | None:
    """Claim the task's due reminder (compare-and-set); what to send, or None when there is nothing to."""
    task = session.get(Task, task_id)
    incident = session.get(Incident, task.incident_id) if task else None
    if task is None or incident is None or incident.status != OPEN or task.status != TASK_OPEN:
        return None
    seen = task.next_nudge_at
    if seen is None or seen > now:
        return None
    values: dict[str, datetime | None]
    if task.owner and task.owner_nudged_at is None:
        to, values = OWNER, {"owner_nudged_at": now, "next_nudge_at": now + NUDGE_GAP}
    elif task.room_nudged_at is None:
        to, values = ROOM, {"room_nudged_at": now, "next_nudge_at": None}
    else:
        to, values = "", {"next_nudge_at": None}
    claimed = rows_changed(session, update(Task).where(
        Task.id == task_id, Task.status == TASK_OPEN, Task.next_nudge_at == seen).values(**values))
    if not claimed or not to:
        return None
    session.refresh(task)
    record_event(session, task.incident_id, TASK_NUDGED, task.text, at=now,
                 data={"task_id": task.id, "to": to, "owner": task.owner})
    return Nudge(task_view(task), to, incident.channel_id)


def release_nudge(session: Session, task_id: int, to: str, retry_at: datetime) -> None:
    """A reminder Slack refused: un-claim it, to be tried again at `retry_at`."""
    cleared = {"owner_nudged_at": None} if to == OWNER else {"room_nudged_at": None}
    session.execute(update(Task).where(Task.id == task_id, Task.status == TASK_OPEN)
                    .values(next_nudge_at=retry_at, **cleared))
