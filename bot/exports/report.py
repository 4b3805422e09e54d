"""What an export says about an incident, gathered once as plain values (everything but the timeline,
which is streamed row by row with `timeline_rows`).

The shape of `build_report` is the JSON export's, documented in `bot/export.schema.json`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from bot.crisis import timeline
from bot.crisis.plan import Plan
from bot.exports.corrections import corrections_section
from bot.exports.narratives import narratives_section
from bot.exports.publications import publications_section
from bot.exports.sections import Section, SectionBuilder, SectionContext
from bot.exports.stakeholder_updates import updates_section
from bot.exports.tasks import coordination_metrics_section, followups_section, tasks_section
from bot.listening.corrections import effective_sentiment
from bot.listening.mentions import contains_any, incident_keywords
from bot.tasks.tasks import STATEMENT_TARGET, TASK_PLANNED
from models import (
    Decision,
    Draft,
    Fact,
    Incident,
    KeyMessage,
    Mention,
    RoleAssignment,
    Rumour,
    SentimentCorrection,
    TimelineEvent,
)
from models.drafts import APPROVED, FAILED, PENDING, REJECTED, REQUESTED, SUPERSEDED
from models.incidents import RUMOUR_OPEN

SCHEMA_VERSION = 1
# A first approved statement later than this is flagged in the post-mortem as slow.
SLOW_STATEMENT = timedelta(minutes=60)
SLOW_ACKNOWLEDGEMENT = timedelta(minutes=15)
MAX_CHART_BUCKETS = 60
BUCKET_MINUTES = (1, 5, 10, 15, 30, 60, 120, 240, 360, 720, 1440)

# Events the bot records by itself: they never count as a person acknowledging the incident.
AUTOMATIC_KINDS = frozenset(
    {
        timeline.INCIDENT_OPENED,
        timeline.INCIDENT_OPEN_STEP,
        timeline.INCIDENT_OPEN_FAILED,
        timeline.INCIDENT_READY,
        TASK_PLANNED,  # the playbook's tasks and statement target, recorded by the open itself
        STATEMENT_TARGET,
        timeline.DIGEST_POSTED,
        timeline.DIGEST_FAILED,
        timeline.DRAFT_READY,
        timeline.DRAFT_FAILED,
        timeline.EXPORT_UPLOADED,
    }
)
_USER_MENTION = re.compile(r"<@([UW][A-Z0-9]{2,})(?:\|[^<>]*)?>")


# Sections features add to the export (bot/exports/sections.py), in the order they are shown.
SECTION_BUILDERS: tuple[SectionBuilder, ...] = (
    narratives_section, tasks_section, followups_section, coordination_metrics_section, updates_section,
    publications_section, corrections_section,
)


class IncidentNotFound(LookupError):
    """No incident has that id."""


@dataclass(frozen=True)
class Clock:
    """How times are shown: UTC always, and the plan's zone beside it."""

    zone: ZoneInfo

    def iso(self, at: datetime | None) -> str | None:
        if at is None:
            return None
        return (at if at.tzinfo is UTC else at.astimezone(UTC)).isoformat()

    def iso_local(self, at: datetime | None) -> str | None:
        return at.astimezone(self.zone).isoformat() if at else None

    def utc_text(self, at: datetime) -> str:
        return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")

    def local_text(self, at: datetime) -> str:
        return at.astimezone(self.zone).strftime("%Y-%m-%d %H:%M:%S %Z")


def duration_text(seconds: float | None) -> str:
    """ "1 h 05 min", "12 min", "40 s"; an em dash when unknown."""
    if seconds is None:
        return "—"
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds} s"
    hours, minutes = divmod(seconds // 60, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days} d {hours} h {minutes:02d} min"
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min"


def with_names(text: str, names: dict[str, str]) -> str:
    """Team text with Slack's `<@U…>` references shown as `@Name`."""
    return _USER_MENTION.sub(lambda match: "@" + names.get(match.group(1), match.group(1)), text)


def _person(user_id: str | None, names: dict[str, str]) -> dict[str, str] | None:
    return {"id": user_id, "name": names.get(user_id, user_id)} if user_id else None


def _pick(data: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        if data.get(key) not in (None, ""):
            return data[key]
    return None


def _metric(
    start: datetime, end: datetime | None, by: str | None, names: dict[str, str], clock: Clock
) -> dict[str, Any] | None:
    if end is None:
        return None
    seconds = max(0, int((end - start).total_seconds()))
    return {
        "seconds": seconds,
        "text": duration_text(seconds),
        "at": clock.iso(end),
        "by": _person(by, names),
    }


def _first_acknowledgement(session: Session, incident: Incident) -> TimelineEvent | None:
    """The first thing a person did in the room once it was ready (see the schema's `metrics`)."""
    ready = session.scalars(
        select(TimelineEvent)
        .where(TimelineEvent.incident_id == incident.id, TimelineEvent.kind == timeline.INCIDENT_READY)
        .order_by(TimelineEvent.at, TimelineEvent.id)
        .limit(1)
    ).first()
    # Recorded after the ready event: on a clock that stands still (a drill's) the open's own role
    # assignments carry the same time as the ready event, and are not anyone acknowledging.
    after_ready = (
        or_(TimelineEvent.at > ready.at, and_(TimelineEvent.at == ready.at, TimelineEvent.id > ready.id))
        if ready is not None
        else TimelineEvent.at >= incident.opened_at
    )
    query = (
        select(TimelineEvent)
        .where(
            TimelineEvent.incident_id == incident.id,
            after_ready,
            TimelineEvent.actor.is_not(None),
            TimelineEvent.kind.not_in(AUTOMATIC_KINDS),
        )
        .order_by(TimelineEvent.at, TimelineEvent.id)
        .limit(1)
    )
    return session.scalars(query).first()


def _bucket_minutes(span: timedelta) -> int:
    for minutes in BUCKET_MINUTES:
        if span <= timedelta(minutes=minutes * MAX_CHART_BUCKETS):
            return minutes
    return BUCKET_MINUTES[-1]


def _mentions(
    session: Session, incident: Incident, plan: Plan, now: datetime, clock: Clock
) -> dict[str, Any]:
    """Volume and sentiment before (the look-back), during and after the incident, and a chart series."""
    lookback = timedelta(minutes=plan.mentions.lookback_minutes)
    opened, resolved = incident.opened_at, incident.resolved_at
    during_end = resolved or now
    windows: dict[str, tuple[datetime, datetime] | None] = {
        "before": (opened - lookback, opened),
        "during": (opened, during_end),
        "after": (resolved, min(resolved + lookback, max(now, resolved))) if resolved else None,
    }
    start = opened - lookback
    end = max(during_end, windows["after"][1] if windows["after"] else during_end)
    minutes = _bucket_minutes(end - start)
    size = timedelta(minutes=minutes)
    bucket_count = max(1, -(-int((end - start).total_seconds()) // int(size.total_seconds())))
    buckets = [{"negative": 0, "neutral": 0, "positive": 0} for _ in range(bucket_count)]
    counts = {name: {"count": 0, "negative": 0} for name in windows}
    query = (
        select(Mention.created_at, effective_sentiment())  # a monitor's correction counts
        .outerjoin(SentimentCorrection, SentimentCorrection.mention_id == Mention.id)
        .where(
            Mention.created_at >= start,
            Mention.created_at < end,
            contains_any(session.get_bind().dialect.name, incident_keywords(plan, incident.playbook)),
        )
        .execution_options(yield_per=5000)
    )
    for created_at, label in session.execute(query):
        for name, window in windows.items():
            if window and window[0] <= created_at < window[1]:
                counts[name]["count"] += 1
                counts[name]["negative"] += label == "negative"
        bucket = buckets[min(len(buckets) - 1, int((created_at - start) / size))]
        bucket[label if label in ("negative", "neutral", "positive") else "neutral"] += 1
    result: dict[str, Any] = {"keywords_from_playbook": incident.playbook, "bucket_minutes": minutes}
    for name, window in windows.items():
        if window is None:
            result[name] = None
            continue
        count, negative = counts[name]["count"], counts[name]["negative"]
        hours = (window[1] - window[0]).total_seconds() / 3600
        result[name] = {
            "start": clock.iso(window[0]),
            "end": clock.iso(window[1]),
            "count": count,
            "negative": negative,
            "negative_share": round(negative / count, 4) if count else None,
            "per_hour": round(count / hours, 2) if hours > 0 else None,
        }
    result["series"] = [{"start": clock.iso(start + size * i), **bucket} for i, bucket in enumerate(buckets)]
    return result


def _severity_history(
    session: Session, incident: Incident, names: dict[str, str], clock: Clock
) -> list[dict[str, Any]]:
    changes = list(
        session.scalars(
            select(TimelineEvent)
            .where(TimelineEvent.incident_id == incident.id, TimelineEvent.kind == timeline.SEVERITY_CHANGED)
            .order_by(TimelineEvent.at, TimelineEvent.id)
        )
    )
    opened = session.scalars(
        select(TimelineEvent)
        .where(TimelineEvent.incident_id == incident.id, TimelineEvent.kind == timeline.INCIDENT_OPENED)
        .limit(1)
    ).first()
    initial = (
        (_pick(opened.data or {}, "severity") if opened else None)
        or (_pick(changes[0].data or {}, "from", "old", "previous") if changes else None)
        or incident.severity
    )
    history = [
        {"at": clock.iso(incident.opened_at), "severity": initial, "by": _person(incident.opened_by, names)}
    ]
    for change in changes:
        severity = _pick(change.data or {}, "to", "new", "severity") or change.text
        history.append(
            {"at": clock.iso(change.at), "severity": str(severity), "by": _person(change.actor, names)}
        )
    return history


def _post_mortem(
    metrics: dict[str, Any], drafts: list[dict[str, Any]], rumours: list[dict[str, Any]], resolved: bool
) -> dict[str, list[str]]:
    """Seeds for the sections the team fills in; every line comes from a record, none is invented."""
    went_well: list[str] = []
    improve: list[str] = []
    actions: list[str] = []
    ack, statement = metrics["time_to_first_acknowledgement"], metrics["time_to_first_approved_statement"]
    for metric, target, on_time, late in (
        (ack, SLOW_ACKNOWLEDGEMENT, "The room was acknowledged", "First acknowledgement took"),
        (statement, SLOW_STATEMENT, "First public statement approved", "First approved statement took"),
    ):
        if metric and metric["seconds"] <= target.total_seconds():
            went_well.append(f"{on_time} {metric['text']} after opening.")
        elif metric:
            improve.append(f"{late} {metric['text']} (over {duration_text(target.total_seconds())}).")
    if statement and statement["seconds"] > SLOW_STATEMENT.total_seconds():
        actions.append("Pre-approve holding statements so the first reply can go out within the hour.")
    elif not statement and resolved:
        improve.append("No public statement was approved during the incident.")
    for rumour in rumours:
        if rumour["status"] == "refuted":
            went_well.append(f"Rumour refuted: {rumour['claim']}")
        elif rumour["status"] == RUMOUR_OPEN:
            actions.append(f"Close out the open rumour: {rumour['claim']}")
    for draft in drafts:
        if draft["status"] == REJECTED:
            decided = draft["decided_by"]["name"] if draft["decided_by"] else "someone"
            improve.append(
                f"Draft #{draft['id']} ({draft['platform']}) was rejected by {decided}: "
                f"{draft['reason'] or 'no reason given'}"
            )
        elif draft["status"] == FAILED:
            improve.append(f"Draft #{draft['id']} failed to generate: {draft['error'] or 'unknown error'}")
    if any(draft["status"] == REJECTED for draft in drafts):
        actions.append("Fold the reasons drafts were rejected into the plan's tone and key messages.")
    return {"went_well": went_well, "to_improve": improve, "action_items": actions}


def build_report(
    session: Session, incident_id: int, plan: Plan, names: dict[str, str], now: datetime,
    post_mortem: dict[str, list[str]] | None = None,
) -> dict[str, Any]:
    """Everything but the timeline, as JSON-ready values. `post_mortem`: sections drafted before
    rendering (`bot.assistant.post_mortem`), shown instead of the seeded ones."""
    incident = session.get(Incident, incident_id)
    if incident is None:
        raise IncidentNotFound(f"no incident {incident_id}")
    clock = Clock(plan.zone)
    opened = incident.opened_at

    roles = list(
        session.scalars(
            select(RoleAssignment)
            .where(RoleAssignment.incident_id == incident_id)
            .order_by(RoleAssignment.assigned_at, RoleAssignment.id)
        )
    )
    lead = next(
        (role.user_id for role in reversed(roles) if role.role == "lead" and role.ended_at is None),
        incident.opened_by,
    )
    drafts = [
        {
            "id": draft.id,
            "platform": draft.platform,
            "request": draft.request,
            "reply_to_url": draft.reply_to_url,
            "status": draft.status,
            "source": draft.source,
            "strategy": draft.strategy,
            "requested_by": _person(draft.requested_by, names),
            "requested_at": clock.iso(draft.requested_at),
            "final_text": draft.final_text or draft.text,
            "revisions": len(draft.revisions),
            "decided_by": _person(draft.decided_by, names),
            "decided_at": clock.iso(draft.decided_at),
            "reason": draft.reason,
            "error": draft.error,
        }
        for draft in session.scalars(
            select(Draft).where(Draft.incident_id == incident_id).order_by(Draft.requested_at, Draft.id)
        )
    ]
    rumours = [
        {
            "id": rumour.id,
            "claim": rumour.claim,
            "status": rumour.status,
            "outcome": rumour.outcome,
            "created_by": _person(rumour.created_by, names),
            "created_at": clock.iso(rumour.created_at),
            "decided_by": _person(rumour.decided_by, names),
            "decided_at": clock.iso(rumour.decided_at),
        }
        for rumour in session.scalars(
            select(Rumour).where(Rumour.incident_id == incident_id).order_by(Rumour.created_at, Rumour.id)
        )
    ]
    first_ack = _first_acknowledgement(session, incident)
    first_approved = min(
        (
            (draft.decided_at, draft.decided_by)
            for draft in session.scalars(
                select(Draft).where(
                    Draft.incident_id == incident_id, Draft.status == APPROVED, Draft.decided_at.is_not(None)
                )
            )
            if draft.decided_at
        ),
        default=(None, None),
    )
    statuses = [draft["status"] for draft in drafts]
    metrics = {
        "time_to_first_acknowledgement": _metric(
            opened, first_ack.at if first_ack else None, first_ack.actor if first_ack else None, names, clock
        ),
        "time_to_first_approved_statement": _metric(
            opened, first_approved[0], first_approved[1], names, clock
        ),
        "time_to_resolve": _metric(opened, incident.resolved_at, incident.resolved_by, names, clock),
        "drafts": {
            "requested": len(drafts),
            "approved": statuses.count(APPROVED),
            "rejected": statuses.count(REJECTED),
            "pending": statuses.count(PENDING) + statuses.count(REQUESTED),
            "failed": statuses.count(FAILED),
            "superseded": statuses.count(SUPERSEDED),
        },
        "rumours": {
            status: sum(r["status"] == status for r in rumours)
            for status in ("open", "refuted", "confirmed", "dismissed")
        }
        | {"total": len(rumours)},
    }
    playbook = plan.playbooks.get(incident.playbook) if incident.playbook else None
    severity = plan.severities.get(incident.severity)  # type: ignore[call-overload]
    return {
        "schema_version": SCHEMA_VERSION,
        "generated_at": clock.iso(now),
        "time_zone": plan.timezone,
        "incident": {
            "id": incident.id,
            "title": incident.title,
            "description": incident.description,
            "status": incident.status,
            "severity": incident.severity,
            "severity_label": severity.label if severity else incident.severity,
            "playbook": incident.playbook,
            "playbook_title": playbook.title if playbook else None,
            "channel_id": incident.channel_id,
            "channel_name": incident.channel_name,
            "opened_at": clock.iso(opened),
            "opened_at_local": clock.iso_local(opened),
            "opened_by": _person(incident.opened_by, names),
            "resolved_at": clock.iso(incident.resolved_at),
            "resolved_at_local": clock.iso_local(incident.resolved_at),
            "resolved_by": _person(incident.resolved_by, names),
            "summary": incident.summary,
            "lead": _person(lead, names),
            "brand": plan.brand.name,
            "drill": incident.is_drill,
        },
        "severity_history": _severity_history(session, incident, names, clock),
        "metrics": metrics,
        "mentions": _mentions(session, incident, plan, now, clock),
        "roles": [
            {
                "role": role.role,
                "title": plan.roles[role.role].title if role.role in plan.roles else role.role,
                "user": _person(role.user_id, names),
                "assigned_by": _person(role.assigned_by, names),
                "assigned_at": clock.iso(role.assigned_at),
                "ended_at": clock.iso(role.ended_at),
                "ended_by": _person(role.ended_by, names),
            }
            for role in roles
        ],
        "decisions": [
            {
                "id": d.id,
                "kind": d.kind,
                "text": d.text,
                "by": _person(d.decided_by, names),
                "at": clock.iso(d.decided_at),
            }
            for d in session.scalars(
                select(Decision)
                .where(Decision.incident_id == incident_id)
                .order_by(Decision.decided_at, Decision.id)
            )
        ],
        "facts": [
            {"id": f.id, "text": f.text, "by": _person(f.added_by, names), "at": clock.iso(f.added_at)}
            for f in session.scalars(
                select(Fact).where(Fact.incident_id == incident_id).order_by(Fact.added_at, Fact.id)
            )
        ],
        "key_messages": [
            {"id": m.id, "text": m.text, "by": _person(m.added_by, names), "at": clock.iso(m.added_at)}
            for m in session.scalars(
                select(KeyMessage)
                .where(KeyMessage.incident_id == incident_id)
                .order_by(KeyMessage.added_at, KeyMessage.id)
            )
        ],
        "drafts": drafts,
        "rumours": rumours,
        "post_mortem": post_mortem or _post_mortem(metrics, drafts, rumours, incident.resolved_at is not None),
        "sections": build_sections(session, incident, clock),
    }


def build_sections(session: Session, incident: Incident, clock: Clock) -> list[Section]:
    """The features' sections (`SECTION_BUILDERS`) for this incident; a builder may return None."""

    def time_text(at: datetime | None) -> str:
        return f"{clock.utc_text(at)} ({clock.local_text(at)})" if at else "—"

    context = SectionContext(session, incident, time_text)
    return [section for build in SECTION_BUILDERS if (section := build(context)) is not None]


class TimelineRow(NamedTuple):
    """One timeline event as every format shows it (a tuple: thousands are made per export)."""

    id: int
    at: datetime
    kind: str
    actor_id: str | None
    actor_name: str | None
    text: str
    data: dict[str, Any]


def timeline_rows(session: Session, incident_id: int, names: dict[str, str]) -> Iterator[TimelineRow]:
    """The incident's whole timeline in order, streamed (memory stays flat however long it is)."""
    for event in timeline.iter_events(session, incident_id):
        yield TimelineRow(
            event.id,
            event.at,
            event.kind,
            event.actor,
            names.get(event.actor, event.actor) if event.actor else None,
            event.text or "",
            event.data or {},
        )
