"""The catch-up: what happened in an incident since a person last looked, gathered as plain values.

"Since you last looked" starts at the later of their last catch-up and their last action on the
timeline in this incident, else at the incident's opening. `gather_catchup` reads everything in one
session; `bot.assistant.summary` turns it into a summary (the LLM's, or a deterministic one).

The catch-up has no `tasks` or `narratives` part yet: those features (issues 17 and 15) add a field
to `CatchUp` and a line to the renderer when they land.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.crisis import timeline
from bot.crisis.incidents import severity_label
from bot.crisis.plan import Plan
from bot.crisis.roles import LEAD
from bot.listening.mentions import contains_any, incident_scope, influence_rank
from bot.listening.narratives import NarrativeLine, incident_narratives, narrative_lines
from bot.tasks.tasks import incident_tasks
from models import (
    CatchupMark,
    Decision,
    Draft,
    Fact,
    Incident,
    KeyMessage,
    Mention,
    RoleAssignment,
    Rumour,
    TimelineEvent,
    rows_changed,
)
from models.drafts import PENDING
from models.incidents import OPEN, RUMOUR_OPEN
from models.tasks import TASK_OPEN

# Someone who joins the channel once the incident is this old gets the catch-up privately.
JOIN_CATCHUP_AFTER = timedelta(minutes=15)
# Bounds: a catch-up stays one readable message and one bounded prompt however long the incident.
MAX_TIMELINE = 60       # newest entries since they last looked
MAX_LISTED = 10         # facts, key messages, decisions, drafts, rumours shown per part
MAX_SAMPLE_POSTS = 5    # most influential posts since they last looked
ENTRY_TEXT_MAX = 500
# Bookkeeping nobody needs to read again.
QUIET_KINDS = frozenset({timeline.INCIDENT_OPEN_STEP})

SINCE_OPEN, SINCE_ACTION, SINCE_CATCHUP = "open", "action", "catchup"
SENTIMENTS = ("negative", "neutral", "positive")


@dataclass(frozen=True)
class TimelineEntry:
    """One timeline row as the catch-up (and the model) sees it; `id` is what points cite."""

    id: int
    at: datetime
    kind: str
    actor: str | None
    text: str


@dataclass(frozen=True)
class Noted:
    """A fact, key message or decision; `entry_id` is its timeline entry (None when it has none)."""

    text: str
    by: str
    at: datetime
    new: bool
    entry_id: int | None = None


@dataclass(frozen=True)
class SeverityStep:
    at: datetime
    old: str
    new: str
    label: str
    by: str | None
    entry_id: int


@dataclass(frozen=True)
class PendingDraft:
    id: int
    platform: str
    request: str
    requested_by: str
    requested_at: datetime


@dataclass(frozen=True)
class OpenRumour:
    id: int
    claim: str
    created_by: str
    created_at: datetime


@dataclass(frozen=True)
class PostSample:
    """A post from the internet (untrusted text)."""

    id: int
    platform: str
    author: str | None
    text: str
    sentiment: str


@dataclass(frozen=True)
class Chatter:
    """What is being said since they last looked: volume, sentiment split, the most influential posts."""

    volume: int
    sentiment: dict[str, int]
    samples: tuple[PostSample, ...]

    @property
    def negative_share(self) -> float:
        return self.sentiment.get("negative", 0) / self.volume if self.volume else 0.0


@dataclass(frozen=True)
class Listed:
    """Up to MAX_LISTED items of a part and how many there are in all."""

    items: tuple[Noted, ...]
    total: int


@dataclass(frozen=True)
class OpenTask:
    """A task still open in the incident, with whether it is overdue."""

    id: int
    text: str
    owner: str | None
    due_at: datetime | None
    overdue: bool


@dataclass(frozen=True)
class CatchUp:
    """Everything one person's catch-up shows. A part added later (tasks, narratives) is one more field."""

    incident_id: int
    user_id: str
    title: str
    status: str
    severity: str
    severity_label: str
    lead: str | None
    channel_id: str | None
    opened_at: datetime
    now: datetime
    since: datetime
    since_reason: str  # SINCE_OPEN, SINCE_ACTION or SINCE_CATCHUP
    timeline: tuple[TimelineEntry, ...]  # newest MAX_TIMELINE since `since`, oldest first
    timeline_total: int
    severity_changes: tuple[SeverityStep, ...]
    facts: Listed
    key_messages: Listed
    decisions: Listed  # those since `since`
    pending_drafts: tuple[PendingDraft, ...]
    pending_total: int
    open_rumours: tuple[OpenRumour, ...]
    rumours_total: int
    chatter: Chatter
    open_tasks: tuple[OpenTask, ...] = ()  # overdue first, then by due time
    narratives: tuple[NarrativeLine, ...] = ()  # the top narratives in the severity's window now
    tasks_total: int = 0

    def known_entries(self) -> set[int]:
        """Every timeline entry id the catch-up (and so the model) was shown: the only ones a point may cite."""
        ids = {entry.id for entry in self.timeline}
        ids |= {step.entry_id for step in self.severity_changes}
        for part in (self.facts, self.key_messages, self.decisions):
            ids |= {item.entry_id for item in part.items if item.entry_id is not None}
        return ids


class CatchUpError(LookupError):
    """No such incident."""


def last_looked(session: Session, incident: Incident, user_id: str) -> tuple[datetime, str]:
    """When this person last looked at the incident, and why we think so."""
    seen = session.scalar(
        select(CatchupMark.seen_at).where(CatchupMark.incident_id == incident.id, CatchupMark.user_id == user_id)
    )
    acted = session.scalar(
        select(func.max(TimelineEvent.at)).where(
            TimelineEvent.incident_id == incident.id, TimelineEvent.actor == user_id
        )
    )
    candidates = [(at, reason) for at, reason in ((seen, SINCE_CATCHUP), (acted, SINCE_ACTION)) if at is not None]
    if not candidates:
        return incident.opened_at, SINCE_OPEN
    return max(candidates, key=lambda pair: pair[0])


def _entry_ids(session: Session, incident_id: int, kind: str, key: str) -> dict[int, int]:
    """Row id → timeline entry id for the events of `kind` that carry `data[key]`."""
    found: dict[int, int] = {}
    for event_id, data in session.execute(
        select(TimelineEvent.id, TimelineEvent.data).where(
            TimelineEvent.incident_id == incident_id, TimelineEvent.kind == kind
        )
    ):
        value = (data or {}).get(key)
        if isinstance(value, int):
            found[value] = event_id
    return found


def _listed(rows: list[Noted], total: int) -> Listed:
    return Listed(tuple(rows[-MAX_LISTED:]), total)


def _chatter(session: Session, plan: Plan, incident: Incident, since: datetime, now: datetime) -> Chatter:
    dialect = session.get_bind().dialect.name
    scope = incident_scope(plan, incident)
    where = (
        Mention.created_at >= max(since, scope.since),
        Mention.created_at <= now,
        contains_any(dialect, scope.keywords),
    )
    split = dict.fromkeys(SENTIMENTS, 0)
    for label, count in session.execute(
        select(Mention.sentiment_label, func.count()).where(*where).group_by(Mention.sentiment_label)
    ):
        split[str(label)] = int(count)
    volume = sum(split.values())
    samples: tuple[PostSample, ...] = ()
    if volume:
        top = session.scalars(
            select(Mention).where(*where).order_by(influence_rank().desc(), Mention.id).limit(MAX_SAMPLE_POSTS)
        )
        samples = tuple(
            PostSample(m.id, m.platform, m.author, m.text[:ENTRY_TEXT_MAX], m.sentiment_label) for m in top
        )
    return Chatter(volume, split, samples)


def gather_catchup(session: Session, plan: Plan, incident_id: int, user_id: str, now: datetime) -> CatchUp:
    """The catch-up for `user_id`: everything since they last looked, and the standing record."""
    incident = session.get(Incident, incident_id)
    if incident is None:
        raise CatchUpError(f"Incident #{incident_id} does not exist.")
    since, reason = last_looked(session, incident, user_id)

    recent = (
        TimelineEvent.incident_id == incident_id,
        TimelineEvent.at > since,
        TimelineEvent.kind.not_in(QUIET_KINDS),
    )
    total = int(session.scalar(select(func.count()).select_from(TimelineEvent).where(*recent)) or 0)
    newest = session.scalars(
        select(TimelineEvent).where(*recent).order_by(TimelineEvent.at.desc(), TimelineEvent.id.desc())
        .limit(MAX_TIMELINE)
    ).all()
    entries = tuple(
        TimelineEntry(e.id, e.at, e.kind, e.actor, e.text[:ENTRY_TEXT_MAX]) for e in reversed(newest)
    )
    steps = tuple(
        SeverityStep(e.at, str(e.data.get("from", "")), str(e.data.get("to", "")),
                     severity_label(plan, str(e.data.get("to", ""))), e.actor, e.id)
        for e in session.scalars(
            select(TimelineEvent)
            .where(TimelineEvent.incident_id == incident_id, TimelineEvent.kind == timeline.SEVERITY_CHANGED,
                   TimelineEvent.at > since)
            .order_by(TimelineEvent.at, TimelineEvent.id)
        )
    )

    fact_entries = _entry_ids(session, incident_id, timeline.FACT_ADDED, "fact_id")
    facts = [
        Noted(f.text, f.added_by, f.added_at, f.added_at > since, fact_entries.get(f.id))
        for f in session.scalars(select(Fact).where(Fact.incident_id == incident_id).order_by(Fact.id))
    ]
    message_entries = _entry_ids(session, incident_id, timeline.MESSAGE_ADDED, "message_id")
    messages = [
        Noted(m.text, m.added_by, m.added_at, m.added_at > since, message_entries.get(m.id))
        for m in session.scalars(
            select(KeyMessage).where(KeyMessage.incident_id == incident_id).order_by(KeyMessage.id)
        )
    ]
    decision_entries = _entry_ids(session, incident_id, timeline.DECISION_LOGGED, "decision_id")
    decisions = [
        Noted(d.text, d.decided_by, d.decided_at, True, decision_entries.get(d.id))
        for d in session.scalars(
            select(Decision)
            .where(Decision.incident_id == incident_id, Decision.kind == "decision", Decision.decided_at > since)
            .order_by(Decision.decided_at, Decision.id)
        )
    ]
    drafts = session.scalars(
        select(Draft).where(Draft.incident_id == incident_id, Draft.status == PENDING).order_by(Draft.id)
    ).all()
    rumours = session.scalars(
        select(Rumour).where(Rumour.incident_id == incident_id, Rumour.status == RUMOUR_OPEN).order_by(Rumour.id)
    ).all()
    lead = session.scalar(
        select(RoleAssignment.user_id)
        .where(RoleAssignment.incident_id == incident_id, RoleAssignment.role == LEAD,
               RoleAssignment.ended_at.is_(None))
        .order_by(RoleAssignment.id.desc())
        .limit(1)
    )
    return CatchUp(
        incident_id=incident.id,
        user_id=user_id,
        title=incident.title,
        status=incident.status,
        severity=incident.severity,
        severity_label=severity_label(plan, incident.severity),
        lead=lead,
        channel_id=incident.channel_id,
        opened_at=incident.opened_at,
        now=now,
        since=since,
        since_reason=reason,
        timeline=entries,
        timeline_total=total,
        severity_changes=steps,
        facts=_listed(facts, len(facts)),
        key_messages=_listed(messages, len(messages)),
        decisions=_listed(decisions, len(decisions)),
        pending_drafts=tuple(
            PendingDraft(d.id, d.platform, d.request[:ENTRY_TEXT_MAX], d.requested_by, d.requested_at)
            for d in drafts[:MAX_LISTED]
        ),
        pending_total=len(drafts),
        open_rumours=tuple(
            OpenRumour(r.id, r.claim[:ENTRY_TEXT_MAX], r.created_by, r.created_at) for r in rumours[:MAX_LISTED]
        ),
        rumours_total=len(rumours),
        chatter=_chatter(session, plan, incident, since, now),
        **_open_tasks(session, incident.id, now),
        narratives=tuple(narrative_lines(incident_narratives(session, plan, incident.id, now)[0])),
    )


def _open_tasks(session: Session, incident_id: int, now: datetime) -> dict[str, Any]:
    """The incident's open tasks, overdue ones first, at most MAX_LISTED of them."""
    still_open = [task for task in incident_tasks(session, incident_id) if task.status == TASK_OPEN]
    far = datetime.max.replace(tzinfo=now.tzinfo)
    still_open.sort(key=lambda task: (not task.overdue(now), task.due_at or far, task.id))
    shown = tuple(OpenTask(task.id, task.text[:ENTRY_TEXT_MAX], task.owner, task.due_at, task.overdue(now))
                  for task in still_open[:MAX_LISTED])
    return {"open_tasks": shown, "tasks_total": len(still_open)}


# ---------------------------------------------------------------------------------------------
# Who has caught up, and the join catch-up (once)
# ---------------------------------------------------------------------------------------------


def _ensure_mark(session: Session, incident_id: int, user_id: str) -> None:
    """The person's row for this incident exists (two workers racing to create it is fine)."""
    exists = session.scalar(
        select(CatchupMark.id).where(CatchupMark.incident_id == incident_id, CatchupMark.user_id == user_id)
    )
    if exists is not None:
        return
    try:
        with session.begin_nested():
            session.execute(insert(CatchupMark).values(incident_id=incident_id, user_id=user_id))
    except IntegrityError:
        pass  # another worker created it first


def mark_caught_up(session: Session, incident_id: int, user_id: str, now: datetime) -> None:
    """Record that the person has seen everything up to `now` ("since you last looked" starts here)."""
    _ensure_mark(session, incident_id, user_id)
    session.execute(
        update(CatchupMark)
        .where(CatchupMark.incident_id == incident_id, CatchupMark.user_id == user_id,
               or_(CatchupMark.seen_at.is_(None), CatchupMark.seen_at < now))
        .values(seen_at=now)
    )


@dataclass(frozen=True)
class JoinVerdict:
    """Whether a channel join earns the catch-up; `reason` says why not, for the logs."""

    send: bool
    reason: str
    incident_id: int | None = None


def claim_join_catchup(
    session: Session, channel_id: str, user_id: str, bot_user_id: str | None, claim: str, now: datetime
) -> JoinVerdict:
    """Decide whether someone joining `channel_id` gets the catch-up, and claim it for `claim` (the job's
    key) so a repeated join event never sends it twice; the same job, run again, may send it again."""
    incident = session.scalars(select(Incident).where(Incident.channel_id == channel_id)).first()
    if incident is None:
        return JoinVerdict(False, "not an incident channel")
    if not user_id or user_id == bot_user_id:
        return JoinVerdict(False, "the bot itself", incident.id)
    if incident.status != OPEN:
        return JoinVerdict(False, f"the incident is {incident.status}", incident.id)
    if now - incident.opened_at < JOIN_CATCHUP_AFTER:
        return JoinVerdict(False, "joined while the incident was opening", incident.id)
    _ensure_mark(session, incident.id, user_id)
    claimed = rows_changed(
        session,
        update(CatchupMark)
        .where(CatchupMark.incident_id == incident.id, CatchupMark.user_id == user_id,
               or_(CatchupMark.join_job.is_(None), CatchupMark.join_job == claim))
        .values(join_job=claim),
    )
    if not claimed:
        return JoinVerdict(False, "already sent the join catch-up", incident.id)
    return JoinVerdict(True, "joined late", incident.id)


def record_join_catchup_sent(session: Session, incident_id: int, user_id: str, now: datetime) -> None:
    """The join catch-up went out: it counts as having caught up."""
    mark_caught_up(session, incident_id, user_id, now)
    session.execute(
        update(CatchupMark)
        .where(CatchupMark.incident_id == incident_id, CatchupMark.user_id == user_id)
        .values(join_sent_at=now)
    )
