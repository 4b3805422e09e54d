"""Follow-ups: action items for after the incident, from `/crisis followup`, the *Follow-up* button on
decisions and rumours, and the lead's hand-over of tasks still open at resolve."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.crisis.commands import parse_user_ref
from bot.crisis.roles import lead_of
from bot.crisis.timeline import add_once_per_job, record_event
from bot.tasks.tasks import TASK_TEXT_MAX, TaskError, TaskView, task_view
from models import Decision, FollowUp, Incident, Rumour, Task, utcnow
from models.incidents import RESOLVED
from models.tasks import TASK_DROPPED, TASK_FOLLOWUP, TASK_OPEN

FOLLOWUP_FORM = "/crisis followup <text> [@owner]"
FOLLOWUP_ADDED = "followup.added"
TASK_HANDED_OVER = "task.handed_over"
SOURCES = ("decision", "rumour")
HANDOVER_CHOICES = (TASK_FOLLOWUP, TASK_DROPPED)


@dataclass(frozen=True)
class FollowUpView:
    id: int
    incident_id: int
    text: str
    owner: str | None
    created_by: str
    created_at: datetime
    source: str


def _view(row: FollowUp) -> FollowUpView:
    return FollowUpView(row.id, row.incident_id, row.text, row.owner, row.created_by, row.created_at, row.source)


def parse_followup_args(args: str) -> tuple[str, str | None]:
    """`<text> [@owner]`: the text and the owner's user id."""
    words = args.split()
    owner = parse_user_ref(words[-1]) if words else None
    if owner is not None:
        words = words[:-1]
    text = " ".join(words)
    if not text:
        raise TaskError(f"Say what needs doing after the incident. Form: `{FOLLOWUP_FORM}`")
    if len(text) > TASK_TEXT_MAX:
        raise TaskError(f"That follow-up is {len(text)} characters; keep it to {TASK_TEXT_MAX}.")
    return text, owner


def _add(session: Session, incident_id: int, text: str, owner: str | None, actor: str, source: str,
         source_id: int | None) -> FollowUpView:
    row = add_once_per_job(
        session, incident_id, FOLLOWUP_ADDED, text, actor, FollowUp, "followup_id",
        lambda now: FollowUp(incident_id=incident_id, text=text, owner=owner, created_by=actor, created_at=now,
                             source=source, source_id=source_id),
        {"owner": owner, "source": source, "source_id": source_id})
    return _view(row)


def add_followup(session: Session, incident_id: int, text: str, owner: str | None, actor: str) -> FollowUpView:
    """`/crisis followup`."""
    return _add(session, incident_id, text, owner, actor, "command", None)


def followup_from(session: Session, source: str, source_id: int, actor: str, channel_id: str) -> FollowUpView:
    """The *Follow-up* button on a decision or rumour: checked against the channel the object's incident
    owns; the clicker owns the follow-up (the same object twice gives the one already made)."""
    if source not in SOURCES:
        raise TaskError("That button is out of date.")
    row: Decision | Rumour | None = (session.get(Decision, source_id) if source == "decision"
                                     else session.get(Rumour, source_id))
    incident = session.get(Incident, row.incident_id) if row is not None else None
    if row is None or incident is None:
        raise TaskError(f"That {source} no longer exists.")
    if incident.channel_id != channel_id:
        raise TaskError(f"That {source} belongs to another incident's channel.")
    existing = session.scalars(select(FollowUp).where(
        FollowUp.source == source, FollowUp.source_id == source_id)).first()
    if existing is not None:
        raise TaskError(f"There is already a follow-up for this {source}, owned by "
                        f"{f'<@{existing.owner}>' if existing.owner else 'nobody'}.")
    text = row.text if isinstance(row, Decision) else f"Rumour: {row.claim}"
    return _add(session, row.incident_id, text[:TASK_TEXT_MAX], actor, actor, source, source_id)


def incident_followups(session: Session, incident_id: int) -> list[FollowUpView]:
    return [_view(r) for r in session.scalars(
        select(FollowUp).where(FollowUp.incident_id == incident_id).order_by(FollowUp.id))]


def hand_over_task(session: Session, task_id: int, choice: str, actor: str, channel_id: str) -> TaskView:
    """At resolve, the lead turns a task still open into a follow-up (owned by the task's owner) or drops it."""
    if choice not in HANDOVER_CHOICES:
        raise TaskError("That button is out of date.")
    task = session.get(Task, task_id, with_for_update=True)
    incident = session.get(Incident, task.incident_id) if task else None
    if task is None or incident is None:
        raise TaskError("That task no longer exists.")
    if incident.channel_id != channel_id:
        raise TaskError("That task belongs to another incident's channel.")
    if incident.status != RESOLVED:
        raise TaskError("Tasks are handed over once the incident is resolved.")
    lead = lead_of(session, incident.id)
    if actor != lead:
        raise TaskError(f"Only the lead{f', <@{lead}>,' if lead else ''} decides what happens to open tasks.")
    if task.status != TASK_OPEN:
        who = f" by <@{task.handed_over_by}>" if task.handed_over_by else ""
        done = "made a follow-up" if task.status == TASK_FOLLOWUP else task.status
        raise TaskError(f"This task was already {done}{who}.")
    now = utcnow()
    task.status, task.handed_over_by, task.handed_over_at, task.next_nudge_at = choice, actor, now, None
    if choice == TASK_FOLLOWUP:
        _add(session, incident.id, task.text, task.owner, actor, "task", task.id)
    record_event(session, incident.id, TASK_HANDED_OVER, task.text, actor=actor, at=now,
                 data={"task_id": task.id, "choice": choice})
    return task_view(task)
