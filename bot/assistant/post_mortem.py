"""The drafted post-mortem: with a model configured, the export's post-mortem sections (what went well,
what to improve, action items) are drafted from the timeline and the export's figures, every point citing
the timeline entries it rests on and marked as a draft. Without a model, or when it fails, the export
keeps its seeded sections (`bot.exports.report._post_mortem`) and the reason is given back to be told.

Computed before rendering (in the export flow) and handed to the export, which never calls a model.
Open tasks join the input once tasks exist (issue 17).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.assistant.catchup import QUIET_KINDS
from bot.assistant.model import (
    AssistantFailed,
    CitedPoint,
    ModelAccess,
    ask_model,
    cited,
    fence_line,
    model_access,
)
from bot.background.runtime import Runtime
from bot.crisis.plan import Plan
from bot.drafting.prompts import PromptError, fill_template, load_template
from bot.exports.report import build_report
from bot.tasks.tasks import incident_tasks
from models import Incident, TimelineEvent, transaction, utcnow
from models.tasks import TASK_DONE, TASK_DROPPED, TASK_FOLLOWUP, TASK_OPEN

SYSTEM_TEMPLATE = "post_mortem_system.md"
REQUEST_TEMPLATE = "post_mortem_request.md"
SYSTEM_FIELDS = frozenset({"brand"})
REQUEST_FIELDS = frozenset({"title", "severity", "opened", "resolved", "metrics", "record"})
DRAFT_MARK = "Draft — review before sharing:"
# A long incident's timeline is cut to its first and newest entries, so the prompt stays bounded.
FIRST_ENTRIES, NEWEST_ENTRIES = 50, 150
LINE_MAX = 400
SECTIONS = ("went_well", "to_improve", "action_items")


class PostMortemAnswer(BaseModel):
    """What the model must return (sent as a strict JSON schema)."""

    went_well: list[CitedPoint] = Field(description="What worked, at most 6 points.")
    to_improve: list[CitedPoint] = Field(description="What to improve, at most 6 points.")
    action_items: list[CitedPoint] = Field(description="Concrete next steps, at most 6.")


@dataclass(frozen=True)
class PostMortemInput:
    """What the draft rests on: the incident, the export's figures, the (bounded) timeline."""

    brand: str
    title: str
    severity: str
    opened_at: datetime
    resolved_at: datetime | None
    metrics: dict[str, Any]
    entries: tuple[tuple[int, datetime, str, str | None, str], ...]  # (id, at, kind, actor, text)
    total_entries: int


@dataclass(frozen=True)
class PostMortemDraft:
    """The export's post-mortem sections, or None and the reason there is no draft."""

    sections: dict[str, list[str]] | None
    model: str | None = None
    reason: str | None = None
    dropped: int = 0
    asked: bool = True  # False when no model is configured (the seeded sections are simply today's)

    def note(self) -> str:
        """One plain sentence for the export's message: drafted, or why the seeded sections stay."""
        if self.sections is not None:
            return (f"The post-mortem sections were drafted by {self.model or 'the language model'} from the "
                    "timeline, each point citing its entries: a draft, review before sharing.")
        if not self.asked:
            return ""
        return f"The post-mortem sections are the seeded ones: the model's draft failed ({self.reason})."


def gather_post_mortem(session: Session, plan: Plan, incident_id: int, now: datetime) -> PostMortemInput:
    incident = session.get(Incident, incident_id)
    if incident is None:
        raise LookupError(f"no incident {incident_id}")
    where = (TimelineEvent.incident_id == incident_id, TimelineEvent.kind.not_in(QUIET_KINDS))
    total = int(session.scalar(select(func.count()).select_from(TimelineEvent).where(*where)) or 0)
    ordered = select(TimelineEvent).where(*where)
    first = session.scalars(ordered.order_by(TimelineEvent.at, TimelineEvent.id).limit(FIRST_ENTRIES)).all()
    newest = session.scalars(
        ordered.order_by(TimelineEvent.at.desc(), TimelineEvent.id.desc()).limit(NEWEST_ENTRIES)
    ).all()
    events = {event.id: event for event in (*first, *newest)}
    entries = tuple(
        (e.id, e.at, e.kind, e.actor, e.text[:LINE_MAX])
        for e in sorted(events.values(), key=lambda e: (e.at, e.id))
    )
    metrics = dict(build_report(session, incident_id, plan, {}, now)["metrics"])
    tasks = incident_tasks(session, incident_id)
    metrics["tasks"] = {
        "done": sum(task.status == TASK_DONE for task in tasks),
        "done late": sum(task.late_by is not None for task in tasks),
        "still open": sum(task.status == TASK_OPEN for task in tasks),
        "turned into follow-ups": sum(task.status == TASK_FOLLOWUP for task in tasks),
        "dropped": sum(task.status == TASK_DROPPED for task in tasks),
    }
    return PostMortemInput(plan.brand.name, incident.title, incident.severity, incident.opened_at,
                           incident.resolved_at, metrics, entries, total)


def _when(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC") if at else "not yet"


def _metric_lines(metrics: dict[str, Any]) -> str:
    lines = []
    for key, label in (("time_to_first_acknowledgement", "Time to first acknowledgement"),
                       ("time_to_first_approved_statement", "Time to first approved public statement"),
                       ("time_to_resolve", "Time to resolve")):
        value = metrics.get(key)
        lines.append(f"- {label}: {value['text'] if value else 'none'}")
    drafts = metrics.get("drafts") or {}
    lines.append("- Drafts: " + ", ".join(f"{count} {status}" for status, count in drafts.items()))
    rumours = metrics.get("rumours") or {}
    lines.append("- Rumours: " + ", ".join(f"{count} {status}" for status, count in rumours.items()))
    tasks = metrics.get("tasks") or {}
    if any(tasks.values()):
        lines.append("- Tasks: " + ", ".join(f"{count} {state}" for state, count in tasks.items()))
    return "\n".join(lines)


def build_post_mortem_messages(given: PostMortemInput, directory: Path | None = None) -> tuple[str, str]:
    """The (system, user) messages of a post-mortem request."""
    record = [
        f"#{entry_id} {_when(at)} [{kind}]{f' by {actor}' if actor else ''}: "
        f"{fence_line(text or '(no text)', LINE_MAX)}"
        for entry_id, at, kind, actor, text in given.entries
    ]
    if given.total_entries > len(given.entries):
        record.insert(FIRST_ENTRIES, f"({given.total_entries - len(given.entries)} entries left out here)")
    values = {
        "title": fence_line(given.title, 200),
        "severity": given.severity,
        "opened": _when(given.opened_at),
        "resolved": _when(given.resolved_at),
        "metrics": _metric_lines(given.metrics),
        "record": "\n".join(record) or "(empty)",
    }
    system = fill_template(load_template(SYSTEM_TEMPLATE, directory), {"brand": given.brand}, SYSTEM_TEMPLATE,
                           SYSTEM_FIELDS)
    user = fill_template(load_template(REQUEST_TEMPLATE, directory), values, REQUEST_TEMPLATE, REQUEST_FIELDS)
    return system, user


def _entries_text(entries: tuple[int, ...]) -> str:
    """"timeline entry 12" or "timeline entries 12, 15" (the ids in the export's timeline table)."""
    ids = ", ".join(str(entry) for entry in entries)
    return f"timeline entr{'y' if len(entries) == 1 else 'ies'} {ids}"


def draft_post_mortem(given: PostMortemInput, access: ModelAccess) -> PostMortemDraft:
    """The drafted sections, each line marked as a draft and ending with the entries it cites; or no
    sections and the reason (no model, a failure, or nothing cited), so the seeded ones stay."""
    if access.client is None:
        return PostMortemDraft(None, reason=access.unavailable or "no language model is configured", asked=False)
    known = {entry[0] for entry in given.entries}
    if not known:
        return PostMortemDraft(None, reason="the timeline is empty")
    try:
        system, user = build_post_mortem_messages(given)
        answer, model = ask_model(access.client, access.model, system, user, PostMortemAnswer)
    except PromptError as exc:
        return PostMortemDraft(None, reason=f"the post-mortem prompt is broken ({exc})")
    except AssistantFailed as exc:
        return PostMortemDraft(None, reason=exc.reason)
    sections: dict[str, list[str]] = {}
    dropped = 0
    for key in SECTIONS:
        kept, lost = cited(getattr(answer, key), known)
        dropped += lost
        sections[key] = [
            f"{DRAFT_MARK} {text} ({_entries_text(entries)})" for text, entries in kept
        ]
    if not any(sections.values()):
        return PostMortemDraft(None, model=model, reason="none of the model's points cited the timeline",
                               dropped=dropped)
    return PostMortemDraft(sections, model=model, dropped=dropped)


def post_mortem_for_export(runtime: Runtime, incident_id: int) -> PostMortemDraft:
    """The draft an export shows, asked for before rendering (the export itself never calls a model)."""
    access = model_access(runtime)
    if access.client is None:
        return PostMortemDraft(None, reason=access.unavailable, asked=False)
    with transaction(runtime.sessions) as session:
        given = gather_post_mortem(session, runtime.plan, incident_id, utcnow())
    return draft_post_mortem(given, access)
