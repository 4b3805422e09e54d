"""The catch-up's summary: the model's (every point citing timeline entries) or, without a model or when
it fails, a deterministic one from the same data, labelled as such. Never an error instead of a catch-up."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, Field

from bot.assistant.catchup import SINCE_ACTION, SINCE_CATCHUP, CatchUp
from bot.assistant.model import AssistantFailed, CitedPoint, ModelAccess, ask_model, cited, fence_line, fenced_lines
from bot.crisis import timeline
from bot.drafting.prompts import PromptError, fill_template, load_template
from bot.exports.report import duration_text

SYSTEM_TEMPLATE = "catchup_system.md"
REQUEST_TEMPLATE = "catchup_request.md"
SYSTEM_FIELDS = frozenset({"brand"})
REQUEST_FIELDS = frozenset({"title", "severity", "opened", "since", "now", "record", "volume", "posts"})
SUMMARY_MAX = 700
LINE_MAX = 400
DETERMINISTIC_POINTS = 8
# Timeline kinds a deterministic summary makes a point of, and how it words them.
POINT_KINDS = {
    timeline.SEVERITY_CHANGED: "Severity changed",
    timeline.FACT_ADDED: "New fact",
    timeline.MESSAGE_ADDED: "New key message",
    timeline.DECISION_LOGGED: "Decision",
    timeline.RUMOUR_TRACKED: "Rumour tracked",
    timeline.RUMOUR_OUTCOME: "Rumour",
    timeline.DRAFT_APPROVED: "Draft approved",
    timeline.DRAFT_REJECTED: "Draft rejected",
    timeline.STATUS_POSTED: "Status update",
    timeline.MESSAGE_LOGGED: "Logged",
    timeline.ROLE_ASSIGNED: "Role",
}


class CatchUpAnswer(BaseModel):
    """What the model must return (sent as a strict JSON schema)."""

    summary: str = Field(description="Two sentences: the situation now, then what changed.")
    summary_entries: list[int] = Field(description="Ids of the timeline entries the summary rests on.")
    key_points: list[CitedPoint] = Field(description="At most 8 points, each citing its entries.")


@dataclass(frozen=True)
class Point:
    text: str
    entries: tuple[int, ...]


@dataclass(frozen=True)
class Summary:
    """The situation in two sentences and the key points. `source` is "llm" or "deterministic";
    a deterministic summary says why (`fallback_reason`)."""

    situation: str
    points: tuple[Point, ...]
    source: str
    model: str | None = None
    fallback_reason: str | None = None
    dropped: int = 0


def _when(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC")


def since_phrase(catchup: CatchUp) -> str:
    """"your last catch-up", "your last action here" or "the incident opened"."""
    if catchup.since_reason == SINCE_CATCHUP:
        return "your last catch-up"
    if catchup.since_reason == SINCE_ACTION:
        return "your last action here"
    return "the incident opened"


def _plural(count: int, one: str, many: str | None = None) -> str:
    return f"{count} {one if count == 1 else (many or one + 's')}"


def deterministic_summary(catchup: CatchUp, reason: str) -> Summary:
    """A summary from the record alone: two sentences of figures, and a point per notable entry."""
    age = duration_text((catchup.now - catchup.opened_at).total_seconds())
    led = f", led by <@{catchup.lead}>" if catchup.lead else ""
    first = f"{catchup.title} is {catchup.severity} ({catchup.severity_label}) and {catchup.status}, open {age}{led}."
    chatter = catchup.chatter
    said = _plural(chatter.volume, "mention")
    if chatter.volume:
        said += f" ({round(chatter.negative_share * 100)}% negative)"
    new_facts = sum(fact.new for fact in catchup.facts.items)
    late = sum(task.overdue for task in catchup.open_tasks)
    overdue = f" ({late} overdue)" if late else ""
    second = (
        f"Since {since_phrase(catchup)}: {_plural(catchup.timeline_total, 'timeline entry', 'timeline entries')}, "
        f"{_plural(new_facts, 'new fact')}, {_plural(catchup.decisions.total, 'decision')}, "
        f"{_plural(catchup.pending_total, 'draft')} waiting for approval, "
        f"{_plural(catchup.rumours_total, 'open rumour')}, {_plural(catchup.tasks_total, 'open task')}"
        f"{overdue} and {said}."
    )
    points = [
        Point(f"{POINT_KINDS[entry.kind]}: {' '.join(entry.text.split())[:LINE_MAX]}", (entry.id,))
        for entry in catchup.timeline
        if entry.kind in POINT_KINDS and entry.text.strip()
    ]
    return Summary(f"{first} {second}", tuple(points[-DETERMINISTIC_POINTS:]), "deterministic",
                   fallback_reason=reason)


def _entry_line(entry_id: int | None, at: datetime, label: str, by: str | None, text: str) -> str | None:
    if entry_id is None:
        return None
    who = f" by {by}" if by else ""
    return f"#{entry_id} {_when(at)} [{label}]{who}: {fence_line(text, LINE_MAX)}"


def request_record(catchup: CatchUp) -> str:
    """The citable record as it goes between the DATA markers: one line per entry, id first."""
    lines: list[str] = []
    for heading, part, label in (
        ("Confirmed facts", catchup.facts, "fact"),
        ("Key messages", catchup.key_messages, "key message"),
    ):
        entries = [line for item in part.items if (line := _entry_line(item.entry_id, item.at, label, item.by,
                                                                         item.text))]
        lines.append(f"{heading} ({part.total} in all):")
        lines.extend(entries or ["(none)"])
    shown = len(catchup.timeline)
    lines.append(f"Timeline since I last looked ({catchup.timeline_total} entries, the newest {shown} shown):")
    lines.extend(
        line for entry in catchup.timeline
        if (line := _entry_line(entry.id, entry.at, entry.kind, entry.actor, entry.text or "(no text)"))
    )
    if not catchup.timeline:
        lines.append("(nothing new)")
    return "\n".join(lines)


def build_catchup_messages(catchup: CatchUp, brand: str, directory: Path | None = None) -> tuple[str, str]:
    """The (system, user) messages of a catch-up request."""
    chatter = catchup.chatter
    volume = f"{_plural(chatter.volume, 'mention')}: " + ", ".join(
        f"{count} {label}" for label, count in chatter.sentiment.items()
    )
    posts = [
        f"[{post.platform}, {post.sentiment}] {fence_line(post.author or 'someone', 60)}: "
        f"{fence_line(post.text, LINE_MAX)}"
        for post in chatter.samples
    ]
    values = {
        "title": fence_line(catchup.title, 200),
        "severity": f"{catchup.severity} ({catchup.severity_label})",
        "opened": _when(catchup.opened_at),
        "since": f"{_when(catchup.since)} ({since_phrase(catchup)})",
        "now": _when(catchup.now),
        "record": request_record(catchup),
        "volume": volume,
        "posts": fenced_lines(posts, "(no posts)"),
    }
    system = fill_template(load_template(SYSTEM_TEMPLATE, directory), {"brand": brand}, SYSTEM_TEMPLATE,
                           SYSTEM_FIELDS)
    user = fill_template(load_template(REQUEST_TEMPLATE, directory), values, REQUEST_TEMPLATE, REQUEST_FIELDS)
    return system, user


def summarise(catchup: CatchUp, access: ModelAccess, brand: str) -> Summary:
    """The model's summary when one is configured and answers with cited points; otherwise the
    deterministic summary, saying why."""
    if access.client is None:
        return deterministic_summary(catchup, access.unavailable or "no language model is configured")
    known = catchup.known_entries()
    if not known:
        return deterministic_summary(catchup, "there is nothing on the timeline for a model to summarise")
    try:
        system, user = build_catchup_messages(catchup, brand)
        answer, model = ask_model(access.client, access.model, system, user, CatchUpAnswer)
    except PromptError as exc:
        return deterministic_summary(catchup, f"the catch-up prompt is broken ({exc})")
    except AssistantFailed as exc:
        return deterministic_summary(catchup, exc.reason)
    situation = " ".join(answer.summary.split())[:SUMMARY_MAX]
    summary_entries = set(answer.summary_entries)
    if not situation or not summary_entries or not summary_entries <= known:
        return deterministic_summary(catchup, "the model's summary did not cite the entries it rests on")
    kept, dropped = cited(answer.key_points, known)
    return Summary(situation, tuple(Point(text, entries) for text, entries in kept), "llm", model=model,
                   dropped=dropped)
