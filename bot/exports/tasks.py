"""The export's task sections: tasks with their timing, follow-ups with owners, and coordination metrics
(time to the first holding statement against the plan's target, tasks done late). Listed once in
`bot.exports.report.SECTION_BUILDERS`; every format renders and escapes them."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select

from bot.exports.sections import Section, SectionContext
from bot.tasks.followups import incident_followups
from bot.tasks.tasks import STATEMENT_TARGET, TaskView, incident_tasks
from models import Draft, TimelineEvent, UpdateReminder
from models.drafts import APPROVED
from models.tasks import TASK_DONE, TASK_DROPPED, TASK_FOLLOWUP, TASK_OPEN


def duration_text(delta: timedelta | None) -> str:
    """`2h 05m`, `12m`, `40s`; empty for None."""
    if delta is None:
        return ""
    seconds = max(0, int(delta.total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m" if minutes else f"{seconds}s"


_STATE = {TASK_OPEN: "open", TASK_DONE: "done", TASK_FOLLOWUP: "made a follow-up", TASK_DROPPED: "dropped"}


def _state(task: TaskView) -> str:
    state = _STATE.get(task.status, task.status)
    if task.handed_over_by:
        state += f" at resolve by {task.handed_over_by}"
    return state


def tasks_section(context: SectionContext) -> Section | None:
    """Every task: owner, due, done (who and when), late by (None when the incident has none)."""
    tasks = incident_tasks(context.session, context.incident.id)
    if not tasks:
        return None
    rows = tuple(
        (f"#{t.id}", t.text, t.owner or "", context.time_text(t.due_at) if t.due_at else "", _state(t),
         t.done_by or "", context.time_text(t.done_at) if t.done_at else "", duration_text(t.late_by))
        for t in tasks
    )
    return Section(
        key="tasks", title="Tasks",
        intro="From the playbook's checklist at open and `/crisis task`; times are when each was due and done.",
        columns=("task", "text", "owner", "due", "state", "done by", "done at", "late by"), rows=rows,
        empty="No tasks.",
        data={"tasks": [{"id": t.id, "kind": t.kind, "owner_role": t.owner_role,
                         "due_at": t.due_at.isoformat() if t.due_at else None,
                         "done_at": t.done_at.isoformat() if t.done_at else None,
                         "late_seconds": int(t.late_by.total_seconds()) if t.late_by else 0} for t in tasks]},
    )


def followups_section(context: SectionContext) -> Section | None:
    """The action items for after the incident, with owners."""
    followups = incident_followups(context.session, context.incident.id)
    if not followups:
        return None
    rows = tuple((f.text, f.owner or "", f.source, f.created_by, context.time_text(f.created_at))
                 for f in followups)
    return Section(key="followups", title="Follow-ups", intro="Action items for after the incident.",
                   columns=("follow-up", "owner", "from", "recorded by", "recorded at"), rows=rows,
                   empty="No follow-ups.")


def _first_approval(context: SectionContext) -> datetime | None:
    return context.session.scalar(
        select(Draft.decided_at)
        .where(Draft.incident_id == context.incident.id, Draft.status == APPROVED, Draft.decided_at.is_not(None))
        .order_by(Draft.decided_at).limit(1)
    )


def coordination_metrics_section(context: SectionContext) -> Section | None:
    """Time to the first holding statement against the plan's target, tasks done late, updates missed."""
    incident = context.incident
    target = context.session.scalars(select(TimelineEvent).where(
        TimelineEvent.incident_id == incident.id, TimelineEvent.kind == STATEMENT_TARGET)).first()
    minutes = int(target.data["minutes"]) if target is not None else None
    first = _first_approval(context)
    took = first - incident.opened_at if first else None
    rows: list[tuple[str, str, str]] = []
    if took is not None and minutes is not None:
        over = took - timedelta(minutes=minutes)
        verdict = "met" if over <= timedelta(0) else f"missed by {duration_text(over)}"
        rows.append(("Time to first holding statement", duration_text(took), f"target {minutes}m: {verdict}"))
    elif took is not None:
        rows.append(("Time to first holding statement", duration_text(took), "no target for this severity"))
    elif minutes is not None:
        rows.append(("Time to first holding statement", "none approved", f"target {minutes}m: missed"))
    tasks = incident_tasks(context.session, incident.id)
    # Each reminder is one stakeholder update that went overdue for the severity's `update_minutes`.
    missed = int(context.session.scalar(
        select(func.count()).select_from(UpdateReminder).where(UpdateReminder.incident_id == incident.id)) or 0)
    if not tasks and minutes is None and not missed:
        return None
    late = [t for t in tasks if t.late_by is not None]
    done = [t for t in tasks if t.status == TASK_DONE]
    rows.append(("Tasks done", f"{len(done)} of {len(tasks)}", ""))
    rows.append(("Tasks done late", str(len(late)),
                 f"latest by {duration_text(max(t.late_by for t in late if t.late_by))}" if late else ""))
    rows.append(("Stakeholder updates missed", str(missed), "overdue for the severity's update cadence"))
    return Section(
        key="coordination_metrics", title="Coordination metrics",
        columns=("metric", "value", "against"), rows=tuple(rows),
        data={"first_statement_seconds": int(took.total_seconds()) if took else None,
              "first_statement_target_minutes": minutes, "tasks": len(tasks), "tasks_done": len(done),
              "tasks_done_late": len(late), "updates_missed": missed},
    )
