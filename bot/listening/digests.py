"""Digest figures: what the internet said about an incident in a window, aggregated in SQL.

A digest covers the `window_minutes` before `window_end` (the severity's cadence) and shows:

- volume of the incident's mentions (see `bot.listening.mentions`) and its change against the window before;
- the sentiment split;
- a spike flag: the plan's spike thresholds applied to this window's volume against the
  `baseline_windows` series buckets before it (`bot.listening.spikes.judge`);
- the five most influential posts (`bot.listening.mentions.influence`: log10(1+reach) + log10(1+engagement));
- top influencers (authors by reach) and top detractors (authors of negative posts ranked by
  (1 + reach) × number of negative posts);
- matches of the incident's open rumours (`bot.listening.mentions.rumour_condition`): new in the window, and in
  total since the incident's mentions begin (lookback before opening);
- rising terms: words whose share of posts rose against the previous window (document frequency, at
  most TERM_SAMPLE newest posts per window, stop words and brand words removed, ≥ MIN_TERM_POSTS
  posts, lift = (posts now + 1) / (expected from before + 1) ≥ MIN_LIFT);
- the window's narratives (`bot.listening.narratives`), with trends against the window before and the
  tracked rumours they carry;
- a series of volume and negatives per cadence-long bucket, from the lookback before the incident
  opened up to now, for the chart.

Window figures are aggregate queries over the `created_at` index; only shown rows are fetched.
Figures that grow with the incident's age (the series and rumour totals) are carried forward from
the previous digest's stored figures, so each digest scans only what arrived since the last one;
a bucket already charted is not recounted (a post imported later with an old time is not charted).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Float, Integer, and_, bindparam, case, cast, func, select, update
from sqlalchemy.orm import Session

from bot.crisis.plan import Plan
from bot.crisis.timeline import DIGEST_FAILED, DIGEST_POSTED, record_event
from bot.listening.corrections import corrected_labels, effective_sentiment
from bot.listening.escalations import capped_since
from bot.listening.mentions import (
    STOP_WORDS,
    IncidentScope,
    contains_any,
    incident_window,
    influence,
    influence_rank,
    rumour_condition,
    significant_words,
    words_of,
)
from bot.listening.narratives import NarrativeSet, window_narratives
from bot.listening.spikes import judge
from models import Digest, Incident, Mention, Rumour, SentimentCorrection, rows_changed
from models.incidents import OPEN, RUMOUR_OPEN

TOP_POSTS = 5
TOP_VOICES = 5
TOP_TERMS = 5
TERM_SAMPLE = 1000
MIN_TERM_POSTS = 3
MIN_LIFT = 1.5
_URL = re.compile(r"https?://\S+|www\.\S+|@\w+", re.IGNORECASE)
SENTIMENTS = ("negative", "neutral", "positive")


@dataclass
class TopPost:
    mention_id: int
    platform: str
    author: str | None
    followers: int
    likes: int
    shares: int
    replies: int
    engagement: int
    influence: float
    text: str
    url: str | None
    sentiment: str
    created_at: str


@dataclass
class Voice:
    """An author in the window: their reach, posts and negative posts."""

    platform: str
    author: str
    followers: int
    posts: int
    negative: int


@dataclass
class RumourMatch:
    rumour_id: int
    claim: str
    words: list[str]
    window_matches: int
    total_matches: int
    example: TopPost | None = None


@dataclass
class RisingTerm:
    term: str
    posts: int
    previous: int


@dataclass
class SeriesPoint:
    start: str
    volume: int
    negative: int


@dataclass
class DigestFigures:
    """Everything a digest shows, as plain values (stored as the Digest row's JSON)."""

    incident_id: int
    title: str
    severity: str
    window_start: str
    window_end: str
    window_minutes: int
    volume: int
    previous_volume: int
    sentiment: dict[str, int]
    spike: bool
    spike_reasons: list[str]
    top_posts: list[TopPost] = field(default_factory=list)
    influencers: list[Voice] = field(default_factory=list)
    detractors: list[Voice] = field(default_factory=list)
    rumours: list[RumourMatch] = field(default_factory=list)
    rising_terms: list[RisingTerm] = field(default_factory=list)
    series: list[SeriesPoint] = field(default_factory=list)
    series_minutes: int = 0
    series_start: str = ""
    escalations_held_back: int = 0  # crossing posts over the hourly escalation cap in the window
    narratives: NarrativeSet | None = None

    @property
    def change(self) -> float | None:
        """Relative change of volume against the previous window; None when that was empty."""
        if not self.previous_volume:
            return None
        return (self.volume - self.previous_volume) / self.previous_volume

    @property
    def negative_share(self) -> float:
        return self.sentiment.get("negative", 0) / self.volume if self.volume else 0.0

    @property
    def quiet(self) -> bool:
        return self.volume == 0

    @property
    def total_since_open(self) -> int:
        return sum(point.volume for point in self.series)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(change=self.change, negative_share=self.negative_share,
                    total_since_open=self.total_since_open)
        return data


def _top_post(mention: Mention) -> TopPost:
    engagement_count = mention.likes + mention.shares + mention.replies
    return TopPost(
        mention_id=mention.id, platform=mention.platform, author=mention.author,
        followers=mention.author_followers, likes=mention.likes, shares=mention.shares,
        replies=mention.replies, engagement=engagement_count,
        influence=round(influence(mention.author_followers, engagement_count), 3),
        text=mention.text, url=mention.url, sentiment=mention.sentiment_label,
        created_at=mention.created_at.isoformat(),
    )


def _bucket_index(dialect: str, start: datetime, width_seconds: int) -> Any:
    """SQL: which `width_seconds` bucket after `start` a mention's created_at falls in, exactly.

    Both times go through the same conversion so a post exactly on a bucket edge lands in the
    later bucket: PostgreSQL subtracts timestamps (an exact interval); SQLite's julianday keeps
    whole milliseconds, so the difference is rounded to milliseconds and divided as integers.
    """
    edge = bindparam("series_start", start, type_=Mention.created_at.type, unique=True)
    if dialect == "postgresql":
        return cast(func.floor(func.extract("epoch", Mention.created_at - edge) / width_seconds), Integer)
    days = func.julianday(Mention.created_at) - func.julianday(edge)
    offset_ms = cast(func.round(days * 86_400_000), Integer)
    return offset_ms // (width_seconds * 1000)  # SQLAlchemy's floor division: integer division here


def _series(session: Session, scope: IncidentScope, dialect: str, end: datetime, minutes: int,
            previous: dict[str, Any] | None) -> list[SeriesPoint]:
    """Buckets of `minutes` from the scope's start to `end`, reusing the previous digest's complete ones."""
    start, width = scope.since, minutes * 60
    points = max(0, math.ceil((end - start).total_seconds() / width))
    kept: list[SeriesPoint] = []
    same_grid = previous and (previous.get("series_start"), previous.get("series_minutes")) == (
        start.isoformat(), minutes)
    if previous and same_grid:
        previous_end = datetime.fromisoformat(previous["window_end"])
        # Keep the buckets that had ended a whole bucket before the previous digest: posts arrive late.
        complete = max(0, int((previous_end - start).total_seconds() // width) - 1)
        kept = [SeriesPoint(**point) for point in previous.get("series", [])[: min(complete, points)]]
    resume = start + timedelta(seconds=width * len(kept))
    bucket = _bucket_index(dialect, start, width).label("bucket")
    negative = func.sum(case((Mention.sentiment_label == "negative", 1), else_=0))
    query = (
        select(bucket, func.count(), negative)
        .where(Mention.created_at >= resume, Mention.created_at < end, contains_any(dialect, scope.keywords))
        .group_by(bucket)
    )
    found = {int(index): (int(count), int(neg or 0)) for index, count, neg in session.execute(query)}
    fresh = [
        SeriesPoint(start=(start + timedelta(seconds=width * index)).isoformat(),
                    volume=found.get(index, (0, 0))[0], negative=found.get(index, (0, 0))[1])
        for index in range(len(kept), points)
    ]
    return kept + fresh


def _baseline(series: list[SeriesPoint], window_start: datetime, minutes: int, count: int) -> list[SeriesPoint]:
    """The last `count` series buckets that ended by `window_start`."""
    ended = [p for p in series if datetime.fromisoformat(p.start) + timedelta(minutes=minutes) <= window_start]
    return ended[-count:]


def _voices(session: Session, where: Any, *, negative_only: bool) -> list[Voice]:
    negative = func.sum(case((Mention.sentiment_label == "negative", 1), else_=0))
    reach = func.max(Mention.author_followers)
    conditions = [where, Mention.author.is_not(None)]
    if negative_only:
        conditions.append(Mention.sentiment_label == "negative")
        order = [((cast(reach, Float) + 1.0) * func.count()).desc(), Mention.author]
    else:
        order = [reach.desc(), func.count().desc(), Mention.author]
    query = (
        select(Mention.platform, Mention.author, reach, func.count(), negative)
        .where(*conditions)
        .group_by(Mention.platform, Mention.author)
        .order_by(*order)
        .limit(TOP_VOICES)
    )
    return [Voice(platform, author, int(followers or 0), int(posts), int(neg or 0))
            for platform, author, followers, posts, neg in session.execute(query)]


def _rumours(session: Session, plan: Plan, incident_id: int, scope: IncidentScope, dialect: str,
             in_window: Any, window_start: datetime, window_end: datetime,
             previous: dict[str, Any] | None) -> list[RumourMatch]:
    rumours = session.scalars(
        select(Rumour)
        .where(Rumour.incident_id == incident_id, Rumour.status == RUMOUR_OPEN)
        .order_by(Rumour.id)
    ).all()
    carried = {item["rumour_id"]: item["total_matches"] for item in (previous or {}).get("rumours", [])}
    previous_end = datetime.fromisoformat(previous["window_end"]) if previous else None
    matches = []
    for rumour in rumours:
        words = significant_words(rumour.claim, plan.brand.keywords)
        claim = rumour_condition(dialect, words)
        in_window_hit = func.sum(case((in_window, 1), else_=0))
        # One lower bound on created_at per query, so the index range starts where counting does.
        carried_total = carried.get(rumour.id) if previous_end is not None else None
        lower = scope.since
        if previous_end is not None and carried_total is not None:
            lower = max(lower, min(previous_end, window_start))
        matching = and_(Mention.created_at >= lower, Mention.created_at < window_end,
                        contains_any(dialect, scope.keywords), claim)
        if previous_end is not None and carried_total is not None:
            # Only what arrived since the previous digest is counted; its total is carried forward.
            recent = case((Mention.created_at >= previous_end, 1), else_=0)
            counts = select(func.sum(recent), in_window_hit).where(matching)
            new_total, window_hits = session.execute(counts).one()
            total = carried_total + int(new_total or 0)
        else:
            total, window_hits = session.execute(select(func.count(), in_window_hit).where(matching)).one()
        total, window_hits = int(total or 0), int(window_hits or 0)
        example = None
        if window_hits:
            best = session.scalars(
                select(Mention).where(in_window, claim)
                .order_by(influence_rank().desc(), Mention.id).limit(1)
            ).first()
            example = _top_post(best) if best else None
        matches.append(RumourMatch(rumour.id, rumour.claim, words, window_hits, total, example))
    return matches


def _term_counts(texts: Iterable[str], excluded: set[str]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for text in texts:
        words = {w for w in words_of(_URL.sub(" ", text)) if len(w) >= 3 and w not in excluded}
        counts.update(words)
    return counts


def rising_terms(current: list[str], previous: list[str], excluded: set[str]) -> list[RisingTerm]:
    """Terms whose share of posts rose against the previous window (see the module docstring)."""
    now_counts = _term_counts(current, excluded)
    before = _term_counts(previous, excluded)
    scale = len(current) / len(previous) if previous else 0.0
    scored = []
    for term, posts in now_counts.items():
        if posts < MIN_TERM_POSTS:
            continue
        lift = (posts + 1) / (before.get(term, 0) * scale + 1)
        if lift >= MIN_LIFT:
            scored.append((-lift, -posts, term))
    scored.sort()
    return [RisingTerm(term, now_counts[term], before.get(term, 0)) for _, _, term in scored[:TOP_TERMS]]


def _texts(session: Session, where: Any) -> list[str]:
    query = select(Mention.text).where(where).order_by(Mention.created_at.desc()).limit(TERM_SAMPLE)
    return list(session.scalars(query))


def _previous_figures(session: Session, incident_id: int, window_end: datetime) -> dict[str, Any] | None:
    """The stored figures of the incident's latest digest up to `window_end`, to carry totals forward."""
    figures = session.scalar(
        select(Digest.figures)
        .where(Digest.incident_id == incident_id, Digest.window_end <= window_end)
        .order_by(Digest.window_end.desc(), Digest.id.desc())
        .limit(1)
    )
    return figures or None


def compute_digest(session: Session, plan: Plan, incident_id: int, window_end: datetime,
                   window_minutes: int | None = None) -> DigestFigures:
    """The figures of an incident's digest for the window ending at `window_end`."""
    window = incident_window(session, plan, incident_id, window_end, window_minutes)
    incident, scope, dialect, minutes = window.incident, window.scope, window.dialect, window.minutes
    width, window_start, keywords = window.width, window.start, window.keywords
    in_window, previous_window = window.current, window.previous
    # This window by sentiment and the window before it, in one scan of both.
    current = case((Mention.created_at >= window_start, 1), else_=0)
    split = dict.fromkeys(SENTIMENTS, 0)
    previous_volume = 0
    sentiment = effective_sentiment()  # a monitor's correction counts from then on
    for label, now_count, total in session.execute(
        select(sentiment, func.sum(current), func.count())
        .outerjoin(SentimentCorrection, SentimentCorrection.mention_id == Mention.id)
        .where(Mention.created_at >= max(window_start - width, scope.since), Mention.created_at < window_end,
               keywords)
        .group_by(sentiment)
    ):
        split[label] = int(now_count or 0)
        previous_volume += int(total) - int(now_count or 0)
    volume = sum(split.values())

    previous = _previous_figures(session, incident.id, window_end)
    series = _series(session, scope, dialect, window_end, minutes, previous)
    baseline = _baseline(series, window_start, minutes, plan.spike.baseline_windows)
    verdict = judge(plan.spike, volume, split["negative"], [p.volume for p in baseline], window_start, window_end,
                    [p.negative for p in baseline])
    figures = DigestFigures(
        incident_id=incident.id, title=incident.title, severity=incident.severity,
        window_start=window_start.isoformat(), window_end=window_end.isoformat(), window_minutes=minutes,
        volume=volume, previous_volume=previous_volume, sentiment=split,
        spike=verdict.is_spike, spike_reasons=verdict.reasons,
        series=series, series_minutes=minutes, series_start=scope.since.isoformat(),
    )
    if volume:
        top = session.scalars(
            select(Mention).where(in_window).order_by(influence_rank().desc(), Mention.id).limit(TOP_POSTS)
        )
        figures.top_posts = [_top_post(mention) for mention in top]
        corrected = corrected_labels(session, [post.mention_id for post in figures.top_posts])
        for post in figures.top_posts:
            post.sentiment = corrected.get(post.mention_id, post.sentiment)
        figures.influencers = _voices(session, in_window, negative_only=False)
        figures.detractors = _voices(session, in_window, negative_only=True)
        excluded = set(STOP_WORDS) | {w for keyword in scope.keywords for w in words_of(keyword)}
        current_texts, previous_texts = _texts(session, in_window), _texts(session, previous_window)
        figures.rising_terms = rising_terms(current_texts, previous_texts, excluded)
    figures.rumours = _rumours(session, plan, incident.id, scope, dialect, in_window,
                               window_start, window_end, previous)
    figures.escalations_held_back = capped_since(session, incident.id, window_start, window_end)
    if volume:
        figures.narratives = window_narratives(session, in_window, previous_window, scope.keywords,
                                               [(match.claim, match.words) for match in figures.rumours])
    return figures


# ---- schedule and record ----------------------------------------------------------------------


def digest_due_times(session: Session, plan: Plan) -> dict[int, datetime]:
    """When each open incident with a channel is next due a scheduled digest.

    `Incident.next_digest_at` is set by the lifecycle; while it is unset, the first digest is
    due one cadence after the incident opened.
    """
    rows = session.execute(
        select(Incident.id, Incident.next_digest_at, Incident.opened_at, Incident.severity)
        .where(Incident.status == OPEN, Incident.channel_id.is_not(None))
    )
    return {
        incident_id: next_at or opened_at + timedelta(minutes=plan.digest_minutes(severity))
        for incident_id, next_at, opened_at, severity in rows
    }


def next_due_after(due: datetime, now: datetime, cadence_minutes: int) -> datetime:
    """The first time on `due`'s cadence strictly after `now`, skipping windows missed while down."""
    step = timedelta(minutes=cadence_minutes)
    if due > now:
        return due
    missed = math.floor((now - due) / step) + 1
    return due + step * missed


def claim_due_digest(session: Session, plan: Plan, incident_id: int, now: datetime) -> bool:
    """Take the incident's due digest (compare-and-set on next_digest_at) so exactly one process posts it.

    Moves next_digest_at to the next time on the cadence after `now`: a digest missed while no
    scheduler ran is posted once, not once per missed window.
    """
    incident = session.get(Incident, incident_id)
    if incident is None or incident.status != OPEN or incident.channel_id is None:
        return False
    cadence = plan.digest_minutes(incident.severity)
    stored = incident.next_digest_at
    due = stored or incident.opened_at + timedelta(minutes=cadence)
    if due > now:
        return False
    current = Incident.next_digest_at.is_(None) if stored is None else Incident.next_digest_at == stored
    return rows_changed(
        session,
        update(Incident)
        .where(Incident.id == incident_id, Incident.status == OPEN, current)
        .values(next_digest_at=next_due_after(due, now, cadence)),
    ) == 1


def summary_line(figures: DigestFigures) -> str:
    """One line for the timeline: volume, change and negative share."""
    if figures.quiet:
        return f"Quiet digest: no mentions in the last {figures.window_minutes} min"
    change = figures.change
    trend = "" if change is None else f" ({change:+.0%} vs the window before)"
    return (f"Digest: {figures.volume} mentions in the last {figures.window_minutes} min{trend}, "
            f"{figures.negative_share:.0%} negative" + (" — spike" if figures.spike else ""))


def record_digest(session: Session, figures: DigestFigures, *, kind: str, requested_by: str | None,
                  channel_id: str, slack_ts: str | None, error: str | None = None) -> Digest:
    """Store the posted digest and its `digest.posted` timeline event, in the caller's transaction."""
    digest = Digest(
        incident_id=figures.incident_id, kind=kind, window_start=datetime.fromisoformat(figures.window_start),
        window_end=datetime.fromisoformat(figures.window_end), requested_by=requested_by,
        figures=figures.as_json(), channel_id=channel_id, slack_ts=slack_ts, error=error,
    )
    session.add(digest)
    session.flush()
    record_event(session, figures.incident_id, DIGEST_POSTED, summary_line(figures), actor=requested_by,
                 data={"digest_id": digest.id, "kind": kind, "volume": figures.volume,
                       "window_start": figures.window_start, "window_end": figures.window_end,
                       "slack_ts": slack_ts, **({"error": error} if error else {})})
    return digest


def record_digest_failure(session: Session, incident_id: int, *, kind: str, requested_by: str | None,
                          error: str) -> None:
    """Log on the timeline that a digest could not be posted."""
    record_event(session, incident_id, DIGEST_FAILED, f"Digest could not be posted: {error}",
                 actor=requested_by, data={"kind": kind, "error": error})
