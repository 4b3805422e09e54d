"""What happens in the war room: facts, key messages, rumours, decisions, status updates and the summary."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, literal, literal_column, select, union_all, update
from sqlalchemy.orm import Session

from bot.crisis.incidents import IncidentError, IncidentSnapshot, incident_snapshot
from bot.crisis.plan import Plan
from bot.crisis.timeline import (
    DECISION_LOGGED,
    FACT_ADDED,
    MESSAGE_ADDED,
    MESSAGE_LOGGED,
    RUMOUR_OUTCOME,
    RUMOUR_TRACKED,
    STATUS_POSTED,
    add_once_per_job,
    once_per_job,
    record_event,
)
from models import Decision, Digest, Draft, Fact, Incident, KeyMessage, Rumour, rows_changed, utcnow
from models.drafts import PENDING
from models.incidents import CONFIRMED, DISMISSED, REFUTED, RUMOUR_OPEN

TEXT_MAX = 2500  # leaves room in a 3,000-character section for the words around it
RUMOUR_OUTCOMES = (REFUTED, CONFIRMED, DISMISSED)


class RoomError(IncidentError):
    """A room request that cannot be done; the message says why."""


def clean_text(text: str, what: str) -> str:
    """Trimmed team text, refused when empty or too long for one message."""
    text = text.strip()
    if not text:
        raise RoomError(f"Say what the {what} is.")
    if len(text) > TEXT_MAX:
        raise RoomError(f"That {what} is {len(text)} characters; keep it to {TEXT_MAX}.")
    return text


@dataclass(frozen=True)
class Entry:
    """A fact, key message or decision as shown in the room."""

    id: int
    incident_id: int
    text: str
    by: str
    at: datetime


def add_fact(session: Session, incident_id: int, text: str, actor: str) -> Entry:
    """Record a confirmed fact drafts may rely on."""
    text = clean_text(text, "fact")
    fact = add_once_per_job(session, incident_id, FACT_ADDED, text, actor, Fact, "fact_id", lambda now: Fact(
        incident_id=incident_id, text=text, added_by=actor, added_at=now))
    return Entry(fact.id, incident_id, fact.text, fact.added_by, fact.added_at)


def add_key_message(session: Session, incident_id: int, text: str, actor: str) -> Entry:
    """Record agreed wording every reply should stay consistent with."""
    text = clean_text(text, "key message")
    message = add_once_per_job(
        session, incident_id, MESSAGE_ADDED, text, actor, KeyMessage, "message_id",
        lambda now: KeyMessage(incident_id=incident_id, text=text, added_by=actor, added_at=now))
    return Entry(message.id, incident_id, message.text, message.added_by, message.added_at)


def record_decision(session: Session, incident_id: int, text: str, actor: str) -> Entry:
    """Log a decision with who made it and when."""
    text = clean_text(text, "decision")
    decision = add_once_per_job(
        session, incident_id, DECISION_LOGGED, text, actor, Decision, "decision_id",
        lambda now: Decision(incident_id=incident_id, kind="decision", text=text, decided_by=actor, decided_at=now))
    return Entry(decision.id, incident_id, decision.text, decision.decided_by, decision.decided_at)


def record_status_update(
    session: Session, incident_id: int, text: str, actor: str, ts: str | None = None
) -> Entry:
    """Log a status update posted in the channel (the event is all there is of it)."""
    text = clean_text(text, "status update")
    key, event = once_per_job(session, STATUS_POSTED)
    if event is None:
        event = record_event(session, incident_id, STATUS_POSTED, text, actor=actor, data={"ts": ts}, at=utcnow(),
                             request_key=key)
    return Entry(event.id, event.incident_id, event.text, event.actor or "", event.at)


def message_time(ts: str) -> datetime:
    """A Slack message ts (`1712345678.000200`) as a UTC datetime."""
    try:
        return datetime.fromtimestamp(float(ts), tz=UTC)
    except (TypeError, ValueError, OverflowError):
        raise RoomError(f"`{str(ts)[:30]}` is not a Slack message time.") from None


def log_message(
    session: Session, incident_id: int, *, text: str, author: str | None, ts: str, actor: str, channel_id: str
) -> Entry:
    """The *Add to timeline* shortcut: log a message with its author, at its own time."""
    at = message_time(ts)
    body = text.strip() or "(a message without text)"
    key, earlier = once_per_job(session, MESSAGE_LOGGED)
    if earlier is not None:
        return Entry(earlier.id, incident_id, earlier.text, earlier.data.get("author") or actor, earlier.at)
    event = record_event(
        session,
        incident_id,
        MESSAGE_LOGGED,
        body[:TEXT_MAX],
        actor=actor,
        data={"author": author, "ts": ts, "channel": channel_id, "logged_at": utcnow().isoformat()},
        at=at,
        request_key=key,
    )
    return Entry(event.id, incident_id, body, author or actor, at)


# ---------------------------------------------------------------------------------------------
# Rumours
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RumourView:
    id: int
    incident_id: int
    claim: str
    status: str
    created_by: str
    created_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    slack_ts: str | None


def _rumour_view(rumour: Rumour) -> RumourView:
    return RumourView(
        rumour.id,
        rumour.incident_id,
        rumour.claim,
        rumour.status,
        rumour.created_by,
        rumour.created_at,
        rumour.decided_by,
        rumour.decided_at,
        rumour.slack_ts,
    )


def track_rumour(session: Session, incident_id: int, claim: str, actor: str) -> RumourView:
    """Start tracking a rumour; its outcome is set later, once."""
    claim = clean_text(claim, "rumour")
    rumour = add_once_per_job(
        session, incident_id, RUMOUR_TRACKED, claim, actor, Rumour, "rumour_id",
        lambda now: Rumour(incident_id=incident_id, claim=claim, status=RUMOUR_OPEN, created_by=actor,
                           created_at=now))
    return _rumour_view(rumour)


def set_rumour_message(session: Session, rumour_id: int, ts: str) -> None:
    """Remember the Slack message that shows the rumour, so its buttons can be replaced."""
    rumour = session.get(Rumour, rumour_id)
    if rumour is not None:
        rumour.slack_ts = ts


def get_rumour(session: Session, rumour_id: int) -> RumourView | None:
    rumour = session.get(Rumour, rumour_id)
    return _rumour_view(rumour) if rumour else None


def set_rumour_outcome(session: Session, rumour_id: int, outcome: str, actor: str) -> tuple[RumourView, bool]:
    """Set a rumour's outcome once (compare-and-set on status); returns it and whether this call set it."""
    if outcome not in RUMOUR_OUTCOMES:
        raise RoomError(f"`{outcome[:20]}` is not a rumour outcome.")
    now = utcnow()
    changed = rows_changed(
        session,
        update(Rumour)
        .where(Rumour.id == rumour_id, Rumour.status == RUMOUR_OPEN)
        .values(status=outcome, decided_by=actor, decided_at=now),
    )
    rumour = session.get(Rumour, rumour_id)
    if rumour is None:
        raise RoomError("That rumour no longer exists.")
    session.refresh(rumour)
    if changed:
        record_event(
            session,
            rumour.incident_id,
            RUMOUR_OUTCOME,
            f"{outcome}: {rumour.claim}",
            actor=actor,
            data={"rumour_id": rumour.id, "outcome": outcome},
            at=now,
        )
    return _rumour_view(rumour), bool(changed)


# ---------------------------------------------------------------------------------------------
# The status summary
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StatusSummary:
    """What `/crisis status` shows."""

    incident: IncidentSnapshot
    open_rumours: tuple[RumourView, ...]
    facts: tuple[Entry, ...]
    key_messages: tuple[Entry, ...]
    decisions: tuple[Entry, ...]
    pending_drafts: int
    last_digest_at: datetime | None
    now: datetime


def status_summary(session: Session, plan: Plan, incident_id: int, recent: int = 5) -> StatusSummary:
    """The incident's state: severity, time open, roles, open rumours, facts, messages, drafts, digests.

    `/crisis status` is answered inside Slack's ack, so this reads in four statements: the incident with
    its counts, its roles, its entries (facts, key messages, the last decisions), its open rumours."""
    pending_drafts = (
        select(func.count(Draft.id))
        .where(Draft.incident_id == Incident.id, Draft.status == PENDING)
        .scalar_subquery()
    )
    last_digest = (
        select(func.max(Digest.posted_at))
        .where(Digest.incident_id == Incident.id, Digest.error.is_(None))
        .scalar_subquery()
    )
    found = session.execute(
        select(Incident, pending_drafts, last_digest).where(Incident.id == incident_id)
    ).one_or_none()
    pending, last_digest_at = (found[1], found[2]) if found else (0, None)
    snapshot = incident_snapshot(session, plan, incident_id)  # the incident is loaded: only its roles are read
    entries = _status_entries(session, incident_id, recent)
    rumours = session.scalars(
        select(Rumour)
        .where(Rumour.incident_id == incident_id, Rumour.status == RUMOUR_OPEN)
        .order_by(Rumour.id)
    ).all()
    return StatusSummary(
        incident=snapshot,
        open_rumours=tuple(_rumour_view(r) for r in rumours),
        facts=entries["fact"],
        key_messages=entries["message"],
        decisions=entries["decision"],
        pending_drafts=pending,
        last_digest_at=last_digest_at,
        now=utcnow(),
    )


def _status_entries(session: Session, incident_id: int, recent: int) -> dict[str, tuple[Entry, ...]]:
    """The incident's facts and key messages, and its last `recent` decisions, oldest first: one statement."""
    last_decisions = (
        select(Decision.id)
        .where(Decision.incident_id == incident_id)
        .order_by(Decision.id.desc())
        .limit(recent)
        .scalar_subquery()
    )
    rows = session.execute(
        union_all(
            select(literal("fact").label("kind"), Fact.id, Fact.text, Fact.added_by, Fact.added_at)
            .where(Fact.incident_id == incident_id),
            select(literal("message"), KeyMessage.id, KeyMessage.text, KeyMessage.added_by, KeyMessage.added_at)
            .where(KeyMessage.incident_id == incident_id),
            select(literal("decision"), Decision.id, Decision.text, Decision.decided_by, Decision.decided_at)
            .where(Decision.id.in_(last_decisions)),
        ).order_by(literal_column("kind"), literal_column("id"))
    ).all()
    entries: dict[str, list[Entry]] = {"fact": [], "message": [], "decision": []}
    for row_kind, entry_id, text, by, at in rows:
        entries[row_kind].append(Entry(entry_id, incident_id, text, by, at))
    return {name: tuple(found) for name, found in entries.items()}
