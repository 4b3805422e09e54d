"""Escalations: one mention that crosses the plan's `escalation` thresholds, pushed into each open
incident it belongs to within seconds of arriving.

Why a queued job and not a periodic scan: every source (POST /mentions, the feed pollers, `warroom
mentions import`) calls `queue_escalations` in the transaction that stores the mentions, so the
escalation rows and one `escalate` job are committed with the mentions themselves: nothing is lost if
the process dies right after, no scheduler has to be running, and a worker (polling every 0.2 s)
posts them at once. A periodic scan would also miss engagement growth: a post seen again is a
duplicate that storage drops, so growth can only be measured as it arrives.

A mention crosses, for an open incident whose keywords it contains (`bot.listening.mentions`), when
any threshold set in the plan holds:

- negative (a monitor's correction wins over the model's label) and author reach ≥ `negative_reach`;
- its engagement (likes + shares + replies) grew by ≥ `engagement_per_minute` per minute since the
  previous sighting of the same post (the interval counts as at least one minute, so two sightings a
  second apart do not multiply a small change by 60);
- it matches one of the incident's open rumours and its author's reach is ≥ `rumour_reach`.

Once per post: an Escalation row is unique per (incident, mention), inserted ON CONFLICT DO NOTHING,
so the same post arriving again or from two sources never escalates twice. The hourly cap and the
"never into a resolved incident" rule are applied when posting (`claim_escalation`), under a lock on
the incident row, so two workers cannot both take the last slot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, func, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from bot.crisis.plan import EscalationThresholds, Plan
from bot.listening.mentions import NewMention, incident_keywords, required_matches, significant_words
from models import Escalation, Incident, Job, Mention, MentionSighting, Rumour, SentimentCorrection
from models.escalations import CAPPED, DROPPED, PENDING, POSTED
from models.incidents import OPEN, RUMOUR_OPEN

ESCALATE_JOB = "escalate"
POSTING = "posting"  # claimed for posting: counts towards the cap; a retried job takes it up again
LOOKUP_BATCH = 500
CAP_WINDOW = timedelta(hours=1)


@dataclass(frozen=True)
class Seen:
    """A stored mention as one arrival saw it: its figures, and its engagement growth since last seen."""

    mention_id: int
    text: str
    created_at: datetime
    followers: int
    sentiment: str
    engagement: int
    growth_per_minute: float | None


@dataclass(frozen=True)
class OpenIncident:
    id: int
    keywords: list[str]
    since: datetime
    rumours: list[tuple[str, list[str]]]  # (claim, significant words)


def engagement_growth(previous: int, previous_at: datetime, current: int, now: datetime) -> float:
    """Engagement gained per minute between two sightings (the interval floored at one minute)."""
    minutes = max((now - previous_at).total_seconds() / 60, 1.0)
    return (current - previous) / minutes


def reasons_to_escalate(limits: EscalationThresholds, seen: Seen, incident: OpenIncident) -> list[str]:
    """Why `seen` crosses the thresholds for `incident` (empty: it does not, or does not belong)."""
    text = seen.text.lower()
    if seen.created_at < incident.since or not any(keyword in text for keyword in incident.keywords):
        return []
    reasons = []
    if limits.negative_reach is not None and seen.sentiment == "negative" \
            and seen.followers >= limits.negative_reach:
        reasons.append(f"negative post from an author with {seen.followers:,} followers "
                       f"(≥ {limits.negative_reach:,})")
    if limits.engagement_per_minute is not None and seen.growth_per_minute is not None \
            and seen.growth_per_minute >= limits.engagement_per_minute:
        reasons.append(f"engagement growing {seen.growth_per_minute:,.0f}/min "
                       f"(≥ {limits.engagement_per_minute:g}/min)")
    if limits.rumour_reach is not None and seen.followers >= limits.rumour_reach:
        for claim, words in incident.rumours:
            if words and sum(word in text for word in words) >= required_matches(len(words)):
                reasons.append(f"matches the tracked rumour “{claim[:120]}” from an author with "
                               f"{seen.followers:,} followers (≥ {limits.rumour_reach:,})")
                break
    return reasons


def open_incidents(session: Session, plan: Plan) -> list[OpenIncident]:
    """The open incidents with a channel, with what selects their mentions and their open rumours."""
    incidents = session.scalars(
        select(Incident).where(Incident.status == OPEN, Incident.channel_id.is_not(None)).order_by(Incident.id)
    ).all()
    found = []
    for incident in incidents:
        claims = session.scalars(
            select(Rumour.claim).where(Rumour.incident_id == incident.id, Rumour.status == RUMOUR_OPEN)
        ).all()
        found.append(OpenIncident(
            id=incident.id, keywords=incident_keywords(plan, incident.playbook),
            since=incident.opened_at - timedelta(minutes=plan.mentions.lookback_minutes),
            rumours=[(claim, significant_words(claim, plan.brand.keywords)) for claim in claims],
        ))
    return found


def _sightings(session: Session, keys: Sequence[tuple[str, str]], arrived: dict[tuple[str, str], int],
               now: datetime) -> list[Seen]:
    """The stored rows of `keys` as seen now; a post seen again with more engagement is recorded as sighted."""
    sentiment = func.coalesce(SentimentCorrection.label, Mention.sentiment_label)
    query = (
        select(Mention.id, Mention.platform, Mention.external_id, Mention.text, Mention.created_at,
               Mention.author_followers, sentiment, Mention.likes + Mention.shares + Mention.replies,
               Mention.ingested_at, MentionSighting.engagement, MentionSighting.seen_at)
        .outerjoin(MentionSighting, MentionSighting.mention_id == Mention.id)
        .outerjoin(SentimentCorrection, SentimentCorrection.mention_id == Mention.id)
        .where(tuple_(Mention.platform, Mention.external_id).in_(list(keys)))
    )
    seen = []
    for (mention_id, platform, external_id, text, created_at, followers, label, stored_engagement, ingested_at,
         sighted_engagement, sighted_at) in session.execute(query):
        previous, previous_at = ((sighted_engagement, sighted_at) if sighted_at is not None
                                 else (int(stored_engagement), ingested_at))
        current = arrived[(platform, external_id)]
        growth = None
        if current > previous:
            growth = engagement_growth(previous, previous_at, current, now)
            if sighted_at is None:
                session.add(MentionSighting(mention_id=mention_id, engagement=current, seen_at=now))
            else:
                session.execute(update(MentionSighting).where(MentionSighting.mention_id == mention_id)
                                .values(engagement=current, seen_at=now))
        seen.append(Seen(mention_id, text, created_at, int(followers), label, current, growth))
    return seen


def _insert_escalations(session: Session, rows: list[dict[str, Any]]) -> list[int]:
    """Insert escalation rows, skipping any (incident, mention) already escalated; the new rows' ids."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table: Table = Escalation.__table__  # type: ignore[assignment]
    statement = (insert(table).on_conflict_do_nothing(index_elements=["incident_id", "mention_id"])
                 .returning(table.c.id))
    return [int(row_id) for row_id in session.connection().execute(statement, rows).scalars()] if rows else []


def queue_escalations(session: Session, plan: Plan, mentions: Sequence[NewMention], now: datetime) -> list[int]:
    """Escalate the crossing ones among `mentions` (just stored, in the caller's transaction): insert their
    escalation rows and one `escalate` job to post them."""
    incidents = open_incidents(session, plan)
    if not incidents:
        return []
    arrived: dict[tuple[str, str], int] = {}
    for mention in mentions:
        engagement = mention.likes + mention.shares + mention.replies
        arrived[mention.key] = max(engagement, arrived.get(mention.key, engagement))
    keys = list(arrived)
    rows: list[dict[str, Any]] = []
    for start in range(0, len(keys), LOOKUP_BATCH):
        for seen in _sightings(session, keys[start : start + LOOKUP_BATCH], arrived, now):
            for incident in incidents:
                reasons = reasons_to_escalate(plan.escalation, seen, incident)
                if reasons:
                    rows.append({"incident_id": incident.id, "mention_id": seen.mention_id, "status": PENDING,
                                 "created_at": now, "figures": {"reasons": reasons,
                                                                "engagement": seen.engagement,
                                                                "growth_per_minute": seen.growth_per_minute}})
    ids = _insert_escalations(session, rows)
    if ids:
        session.add(Job(kind=ESCALATE_JOB, payload={"escalation_ids": ids}))
    return ids


# ---- posting ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class EscalationView:
    """What an escalation message shows."""

    escalation_id: int
    incident_id: int
    channel_id: str
    mention_id: int
    platform: str
    author: str | None
    followers: int
    likes: int
    shares: int
    replies: int
    text: str
    url: str | None
    sentiment: str
    model_sentiment: str
    reasons: list[str]
    growth_per_minute: float | None


def _lock_incident(session: Session, incident_id: int) -> None:
    """Serialise claims on one incident until the transaction ends: an update that changes nothing takes
    PostgreSQL's row lock and SQLite's write lock."""
    session.execute(update(Incident).where(Incident.id == incident_id).values(severity=Incident.severity))


def claim_escalation(session: Session, limits: EscalationThresholds, escalation_id: int,
                     now: datetime) -> EscalationView | None:
    """Take a pending escalation for posting, or settle it: None when it is posted already, its incident is
    no longer open (dropped) or the incident's hourly cap is reached (capped, counted in the next digest)."""
    incident_id = session.scalar(select(Escalation.incident_id).where(Escalation.id == escalation_id))
    if incident_id is None:
        return None
    _lock_incident(session, incident_id)
    escalation = session.get(Escalation, escalation_id, populate_existing=True)
    incident = session.get(Incident, incident_id)
    if escalation is None or incident is None or escalation.status not in (PENDING, POSTING):
        return None
    if incident.status != OPEN or incident.channel_id is None:
        escalation.status = DROPPED
        return None
    taken = session.scalar(
        select(func.count()).select_from(Escalation)
        .where(Escalation.incident_id == incident_id, Escalation.id != escalation_id,
               Escalation.status.in_((POSTED, POSTING)), Escalation.posted_at > now - CAP_WINDOW)
    ) or 0
    if escalation.status == PENDING and taken >= limits.hourly_cap:
        escalation.status = CAPPED
        return None
    escalation.status, escalation.posted_at = POSTING, now
    mention = session.get(Mention, escalation.mention_id)
    assert mention is not None  # the foreign key cascades
    correction = session.get(SentimentCorrection, mention.id)
    figures = escalation.figures or {}
    return EscalationView(
        escalation_id=escalation.id, incident_id=incident_id, channel_id=incident.channel_id,
        mention_id=mention.id, platform=mention.platform, author=mention.author,
        followers=mention.author_followers, likes=mention.likes, shares=mention.shares, replies=mention.replies,
        text=mention.text, url=mention.url,
        sentiment=correction.label if correction else mention.sentiment_label,
        model_sentiment=mention.sentiment_label, reasons=list(figures.get("reasons", [])),
        growth_per_minute=figures.get("growth_per_minute"),
    )


def mark_escalation_posted(session: Session, escalation_id: int, channel_id: str, slack_ts: str) -> None:
    session.execute(update(Escalation).where(Escalation.id == escalation_id)
                    .values(status=POSTED, channel_id=channel_id, slack_ts=slack_ts, error=None))


def release_escalation(session: Session, escalation_id: int, error: str) -> None:
    """Slack did not take it: back to pending (its cap slot freed) so the job's retry posts it."""
    session.execute(update(Escalation).where(Escalation.id == escalation_id, Escalation.status == POSTING)
                    .values(status=PENDING, posted_at=None, error=error))


def record_escalation_failure(session: Session, escalation_ids: Sequence[int], error: str) -> None:
    """The job failed for good: note why on the rows still waiting."""
    session.execute(update(Escalation).where(Escalation.id.in_(list(escalation_ids)),
                                             Escalation.status.in_((PENDING, POSTING)))
                    .values(error=error[:2000]))


def capped_since(session: Session, incident_id: int, start: datetime, end: datetime) -> int:
    """How many escalations over the hourly cap were held back in [start, end) (for the digest)."""
    return int(session.scalar(
        select(func.count()).select_from(Escalation)
        .where(Escalation.incident_id == incident_id, Escalation.status == CAPPED,
               Escalation.created_at >= start, Escalation.created_at < end)
    ) or 0)
