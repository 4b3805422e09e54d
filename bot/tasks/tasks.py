"""Tasks: from the playbook's checklist at open, or `/crisis task`; done, taken, reassigned, snoozed.

Who may do what is checked here, on every path (command, button, retry), against the incident the task
belongs to: anyone in the incident's channel may finish a task or take an unowned one; taking a task
someone else owns, or giving it to a third person, is a reassignment, which only the owner or the
incident's lead may make.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.crisis.commands import parse_user_ref
from bot.crisis.incidents import IncidentError
from bot.crisis.plan import ChecklistItem, Plan
from bot.crisis.roles import active_holders, lead_of
from bot.crisis.timeline import add_once_per_job, record_event
from bot.infra.mrkdwn import escape_mrkdwn
from models import Incident, Task, TimelineEvent, rows_changed, utcnow
from models.incidents import OPEN
from models.tasks import STATEMENT, TASK_DONE, TASK_OPEN

TASK_TEXT_MAX = 300
DUE_MAX = timedelta(days=7)
SNOOZE = timedelta(minutes=30)
# Never more than one reminder per task in this long.
NUDGE_GAP = timedelta(minutes=30)
TASK_FORM = "/crisis task <text> [@owner] [due 30m|HH:MM]"

# Timeline event kinds of tasks.
TASK_ADDED = "task.added"
TASK_PLANNED = "task.planned"  # made from the playbook at open: automatic, not anyone acknowledging
TASK_COMPLETED = "task.done"
TASK_TAKEN = "task.taken"
TASK_REASSIGNED = "task.reassigned"
TASK_SNOOZED = "task.snoozed"
TASK_NUDGED = "task.nudged"

_DURATION = re.compile(r"^(?:(\d{1,3})h)?(?:(\d{1,4})m(?:in)?)?$", re.IGNORECASE)
_CLOCK = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


class TaskError(IncidentError):
    """A task request that cannot be done; the message says why, for the person who asked."""


@dataclass(frozen=True)
class TaskView:
    """A task as the room sees it."""

    id: int
    incident_id: int
    text: str
    kind: str | None
    owner: str | None
    owner_role: str | None
    due_at: datetime | None
    status: str
    created_by: str
    created_at: datetime
    done_by: str | None
    done_at: datetime | None
    channel_id: str | None
    slack_ts: str | None
    next_nudge_at: datetime | None
    owner_nudged_at: datetime | None
    room_nudged_at: datetime | None
    handed_over_by: str | None
    handed_over_at: datetime | None

    def overdue(self, now: datetime) -> bool:
        return self.status == TASK_OPEN and self.due_at is not None and self.due_at <= now

    @property
    def late_by(self) -> timedelta | None:
        """How long after its due time it was done (None: not done, no due time, or on time)."""
        if self.done_at is None or self.due_at is None or self.done_at <= self.due_at:
            return None
        return self.done_at - self.due_at


def task_view(task: Task) -> TaskView:
    return TaskView(
        task.id, task.incident_id, task.text, task.kind, task.owner, task.owner_role, task.due_at, task.status,
        task.created_by, task.created_at, task.done_by, task.done_at, task.channel_id, task.slack_ts,
        task.next_nudge_at, task.owner_nudged_at, task.room_nudged_at, task.handed_over_by, task.handed_over_at,
    )


# ---------------------------------------------------------------------------------------------
# Parsing `/crisis task`
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskArgs:
    text: str
    owner: str | None
    due_at: datetime | None


def parse_due(word: str, zone: ZoneInfo, now: datetime) -> datetime:
    """`30m`, `2h`, `1h30m` from now, or `HH:MM` today in the plan's zone; refused when past or malformed."""
    zone_name = getattr(zone, "key", str(zone))
    form = ("Write the due time as minutes or hours from now (`due 30m`, `due 2h`) "
            f"or a time today ({zone_name}) like `due 14:30`.")
    word = word.strip()
    clock = _CLOCK.match(word)
    if clock:
        local_now = now.astimezone(zone)
        at = local_now.replace(hour=int(clock.group(1)), minute=int(clock.group(2)), second=0, microsecond=0)
        if at <= local_now:
            raise TaskError(f"{word} ({zone_name}) has already passed today. {form}")
        return at.astimezone(now.tzinfo)
    duration = _DURATION.match(word)
    if not word or not duration or not (duration.group(1) or duration.group(2)):
        raise TaskError(f"`{_quote(word)}` is not a due time. {form}")
    delta = timedelta(hours=int(duration.group(1) or 0), minutes=int(duration.group(2) or 0))
    if delta <= timedelta(0):
        raise TaskError(f"A task cannot be due now or in the past. {form}")
    if delta > DUE_MAX:
        raise TaskError(f"Keep the due time within {DUE_MAX.days} days. {form}")
    return now + delta


def _quote(word: str) -> str:
    return escape_mrkdwn(word[:20]).replace("`", "'")


def parse_task_args(args: str, zone: ZoneInfo, now: datetime) -> TaskArgs:
    """`<text> [@owner] [due 30m|HH:MM]` (owner and due in either order, at the end)."""
    words = args.split()
    owner: str | None = None
    due_at: datetime | None = None
    for _ in range(2):
        if len(words) >= 2 and words[-2].lower() == "due" and due_at is None:
            due_at = parse_due(words[-1], zone, now)
            words = words[:-2]
        elif words and words[-1].lower() == "due":
            raise TaskError(f"Say when it is due after `due`, like `due 30m` or `due 14:30`. Form: `{TASK_FORM}`")
        elif words and owner is None and (ref := parse_user_ref(words[-1])) is not None:
            owner = ref
            words = words[:-1]
        elif words and owner is None and words[-1].startswith("@"):
            raise TaskError(f"`{_quote(words[-1])}` is not someone War Room can find: pick the person with "
                            "Slack's @ autocomplete.")
    text = " ".join(words)
    if not text:
        raise TaskError(f"Say what the task is. Form: `{TASK_FORM}`")
    if len(text) > TASK_TEXT_MAX:
        raise TaskError(f"That task is {len(text)} characters; keep it to {TASK_TEXT_MAX}.")
    return TaskArgs(text, owner, due_at)


# ---------------------------------------------------------------------------------------------
# Making tasks
# ---------------------------------------------------------------------------------------------


def item_text(item: str | ChecklistItem) -> str:
    return item if isinstance(item, str) else item.text


def create_playbook_tasks(session: Session, plan: Plan, incident_id: int, actor: str) -> list[int]:
    """Each checklist item of the incident's playbook as a task (once: a resumed open makes none again),
    owned by its role's first holder and due relative to the open. The ids of the tasks made."""
    incident = session.get(Incident, incident_id)
    if incident is None or not incident.playbook or incident.playbook not in plan.playbooks:
        return []
    made = set(session.scalars(select(Task.checklist_index).where(
        Task.incident_id == incident_id, Task.checklist_index.is_not(None))))
    holders = active_holders(session, incident_id)
    created: list[int] = []
    for index, item in enumerate(plan.playbooks[incident.playbook].checklist):
        if index in made:
            continue
        role = item.owner if isinstance(item, ChecklistItem) else None
        minutes = item.due_minutes if isinstance(item, ChecklistItem) else None
        due_at = incident.opened_at + timedelta(minutes=minutes) if minutes is not None else None
        task = Task(
            incident_id=incident_id, text=item_text(item), checklist_index=index,
            kind=item.kind if isinstance(item, ChecklistItem) else None,
            owner=next(iter(holders.get(role) or []), None) if role else None, owner_role=role,
            due_at=due_at, next_nudge_at=due_at, status=TASK_OPEN, created_by=actor, created_at=utcnow(),
        )
        session.add(task)
        session.flush()
        record_event(session, incident_id, TASK_PLANNED, task.text, actor=actor,
                     data={"task_id": task.id, "owner": task.owner, "from": "playbook",
                           "due_at": due_at.isoformat() if due_at else None})
        created.append(task.id)
    return created


STATEMENT_TARGET = "statement.target"


def record_statement_target(session: Session, plan: Plan, incident_id: int, actor: str) -> None:
    """At open, the plan's target for the first holding statement, kept for the export (once per incident)."""
    incident = session.get(Incident, incident_id)
    if incident is None or session.scalars(select(TimelineEvent.id).where(
            TimelineEvent.incident_id == incident_id, TimelineEvent.kind == STATEMENT_TARGET)).first():
        return
    minutes = plan.first_statement_minutes(incident.severity)
    if minutes is None:
        return
    due = incident.opened_at + timedelta(minutes=minutes)
    record_event(session, incident_id, STATEMENT_TARGET, f"First holding statement due within {minutes} minutes",
                 actor=actor, data={"minutes": minutes, "due_at": due.isoformat()}, at=incident.opened_at)


def add_task(session: Session, incident_id: int, args: TaskArgs, actor: str) -> TaskView:
    """Record a task added with `/crisis task` (once per queued job, however often it runs)."""
    task = add_once_per_job(
        session, incident_id, TASK_ADDED, args.text, actor, Task, "task_id",
        lambda now: Task(incident_id=incident_id, text=args.text, owner=args.owner, due_at=args.due_at,
                         next_nudge_at=args.due_at, status=TASK_OPEN, created_by=actor, created_at=now),
        {"owner": args.owner, "from": "command", "due_at": args.due_at.isoformat() if args.due_at else None})
    return task_view(task)


def forget_task(session: Session, task_id: int) -> None:
    """Remove a task whose message Slack refused, so nothing is left half-done."""
    task = session.get(Task, task_id)
    if task is None or task.slack_ts is not None:
        return
    for event in session.scalars(select(TimelineEvent).where(
            TimelineEvent.incident_id == task.incident_id, TimelineEvent.kind == TASK_ADDED)):
        if event.data.get("task_id") == task_id:
            session.delete(event)
    session.delete(task)


def set_task_message(session: Session, task_id: int, channel_id: str, ts: str) -> None:
    """Remember the one message that shows the task, so it is updated in place."""
    session.execute(update(Task).where(Task.id == task_id).values(channel_id=channel_id, slack_ts=ts))


def get_task(session: Session, task_id: int) -> TaskView | None:
    task = session.get(Task, task_id)
    return task_view(task) if task else None


def incident_tasks(session: Session, incident_id: int) -> list[TaskView]:
    """Every task of the incident, in the order they were made."""
    query = select(Task).where(Task.incident_id == incident_id).order_by(Task.id)
    return [task_view(t) for t in session.scalars(query)]


def open_tasks_of(session: Session, user_id: str, limit: int = 20) -> list[tuple[TaskView, str | None]]:
    """`user_id`'s open tasks in open incidents, soonest due first, with the incident's channel."""
    rows = session.execute(
        select(Task, Incident.channel_id)
        .join(Incident, Incident.id == Task.incident_id)
        .where(Task.owner == user_id, Task.status == TASK_OPEN, Incident.status == OPEN)
        .order_by(Task.due_at.is_(None), Task.due_at, Task.id)
        .limit(limit)
    ).all()
    return [(task_view(task), channel_id) for task, channel_id in rows]


def people_concerned(session: Session, incident_id: int, limit: int = 100) -> list[str]:
    """Whose App Home shows this incident: its opener, its role holders and its tasks' owners."""
    incident = session.get(Incident, incident_id)
    if incident is None:
        return []
    holders = [user for users in active_holders(session, incident_id).values() for user in users]
    owners = session.scalars(select(Task.owner).where(Task.incident_id == incident_id, Task.owner.is_not(None)))
    return list(dict.fromkeys([incident.opened_by, *holders, *(o for o in owners if o)]))[:limit]


# ---------------------------------------------------------------------------------------------
# Changing tasks (buttons and commands)
# ---------------------------------------------------------------------------------------------


def _task_in_room(session: Session, task_id: int, channel_id: str | None) -> tuple[Task, Incident]:
    """The task, checked against the incident it belongs to: clicked in that incident's channel, still open."""
    task = session.get(Task, task_id, with_for_update=True)
    incident = session.get(Incident, task.incident_id) if task else None
    if task is None or incident is None:
        raise TaskError("That task no longer exists.")
    if channel_id is not None and incident.channel_id != channel_id:
        raise TaskError("That task belongs to another incident's channel; use it there.")
    if incident.status != OPEN:
        raise TaskError("This incident is resolved, so its tasks no longer change here.")
    return task, incident


def complete_task(session: Session, task_id: int, actor: str, channel_id: str | None) -> tuple[TaskView, bool]:
    """Mark a task done (anyone in the channel); records who and when. Whether this call did it."""
    task, _ = _task_in_room(session, task_id, channel_id)
    if task.status == TASK_DONE:
        return task_view(task), False
    if task.status != TASK_OPEN:
        raise TaskError(f"This task was {task.status} at resolve.")
    now = utcnow()
    task.status, task.done_by, task.done_at, task.next_nudge_at = TASK_DONE, actor, now, None
    late = task_view(task).late_by
    record_event(session, task.incident_id, TASK_COMPLETED, task.text, actor=actor, at=now,
                 data={"task_id": task.id, "late_seconds": int(late.total_seconds()) if late else 0})
    return task_view(task), True


def _may_reassign(session: Session, task: Task, actor: str) -> bool:
    return actor == task.owner or actor == lead_of(session, task.incident_id)


def take_task(session: Session, task_id: int, actor: str, channel_id: str | None) -> TaskView:
    """*Take it*: anyone takes an unowned task; taking one someone else owns is a reassignment."""
    task, _ = _task_in_room(session, task_id, channel_id)
    if task.status != TASK_OPEN:
        raise TaskError("This task is already done.")
    if task.owner == actor:
        raise TaskError("You already own this task.")
    if task.owner is not None and not _may_reassign(session, task, actor):
        raise TaskError(f"<@{task.owner}> owns this task; only they or the lead can hand it on.")
    previous, task.owner = task.owner, actor
    record_event(session, task.incident_id, TASK_TAKEN, task.text, actor=actor,
                 data={"task_id": task.id, "from": previous})
    return task_view(task)


def reassign_task(session: Session, incident_id: int, task_id: int, actor: str, owner: str) -> TaskView:
    """Give a task to someone (the owner or the lead only)."""
    task = session.get(Task, task_id, with_for_update=True)
    if task is None or task.incident_id != incident_id:
        raise TaskError(f"This incident has no task #{task_id}; `/crisis tasks` lists them.")
    task, _ = _task_in_room(session, task_id, None)
    if task.status != TASK_OPEN:
        raise TaskError("This task is already done.")
    if not _may_reassign(session, task, actor):
        owner_text = f"its owner <@{task.owner}> or the lead" if task.owner else "the lead"
        raise TaskError(f"Only {owner_text} can reassign this task.")
    previous, task.owner = task.owner, owner
    record_event(session, incident_id, TASK_REASSIGNED, task.text, actor=actor,
                 data={"task_id": task.id, "from": previous, "to": owner})
    return task_view(task)


def snooze_task(session: Session, task_id: int, actor: str, channel_id: str | None) -> TaskView:
    """*Snooze 30m*: the next reminder moves 30 minutes on (and never sooner than 30 minutes after the last)."""
    task, _ = _task_in_room(session, task_id, channel_id)
    if task.status != TASK_OPEN:
        raise TaskError("This task is already done.")
    now = utcnow()
    if task.due_at is None or task.due_at > now:
        raise TaskError("This task is not overdue, so there is no reminder to snooze.")
    last = max((at for at in (task.owner_nudged_at, task.room_nudged_at) if at is not None), default=None)
    task.next_nudge_at = max(now + SNOOZE, last + NUDGE_GAP) if last else now + SNOOZE
    if task.room_nudged_at is not None:
        # Both reminders were sent: the snooze asks for one more round, owner first.
        task.owner_nudged_at = task.room_nudged_at = None
    task.snoozed_by = actor
    record_event(session, task.incident_id, TASK_SNOOZED, task.text, actor=actor, at=now,
                 data={"task_id": task.id, "until": task.next_nudge_at.isoformat()})
    return task_view(task)


def complete_statement_task(session: Session, incident_id: int, actor: str) -> list[int]:
    """The first approved statement completes the playbook's `kind: statement` tasks; their ids."""
    now = utcnow()
    ids = list(session.scalars(select(Task.id).where(
        Task.incident_id == incident_id, Task.kind == STATEMENT, Task.status == TASK_OPEN)))
    done = []
    for task_id in ids:
        if rows_changed(session, update(Task).where(Task.id == task_id, Task.status == TASK_OPEN)
                        .values(status=TASK_DONE, done_by=actor, done_at=now, next_nudge_at=None)):
            task = session.get(Task, task_id)
            assert task is not None
            session.refresh(task)
            late = task_view(task).late_by
            record_event(session, incident_id, TASK_COMPLETED, task.text, actor=actor, at=now,
                         data={"task_id": task_id, "by_statement": True,
                               "late_seconds": int(late.total_seconds()) if late else 0})
            done.append(task_id)
    return done


def statement_due_at(plan: Plan, severity: str, opened_at: datetime) -> datetime | None:
    """When the first holding statement is due (the plan's `first_statement_minutes`)."""
    minutes = plan.first_statement_minutes(severity)
    return opened_at + timedelta(minutes=minutes) if minutes is not None else None

