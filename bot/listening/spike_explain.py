"""What a spike alert says changed: rising terms and narratives against the baseline, the top posts by
reach, and the sentiment shift against the baseline (the figures that crossed are the verdict's reasons).

Rising terms compare the window's posts with the baseline windows' posts (at most TERM_SAMPLE newest of
each; `bot.listening.digests.rising_terms`), brand words and stop words left out.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from bot.crisis.plan import Plan
from bot.listening.digests import TERM_SAMPLE, RisingTerm, TopPost, rising_terms
from bot.listening.mentions import STOP_WORDS, engagement, influence, words_of
from bot.listening.narratives import NarrativeLine, narrative_lines, window_narratives
from bot.listening.spikes import SpikeVerdict
from models import Mention, SentimentCorrection

TOP_BY_REACH = 3
TOP_NARRATIVES = 3


@dataclass
class SpikeExplanation:
    """What changed in the spiking window, as plain values (stored with the alert)."""

    rising_terms: list[RisingTerm] = field(default_factory=list)
    top_posts: list[TopPost] = field(default_factory=list)
    narratives: list[NarrativeLine] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def _texts(session: Session, where: Any) -> list[str]:
    query = select(Mention.text).where(where).order_by(Mention.created_at.desc()).limit(TERM_SAMPLE)
    return list(session.scalars(query))


def explain_spike(session: Session, plan: Plan, verdict: SpikeVerdict) -> SpikeExplanation:
    """The rising terms and top posts by reach of the verdict's window."""
    window = and_(Mention.created_at >= verdict.window_start, Mention.created_at < verdict.window_end)
    baseline_start = verdict.window_start - timedelta(minutes=verdict.minutes * max(len(verdict.baseline), 1))
    baseline = and_(Mention.created_at >= baseline_start, Mention.created_at < verdict.window_start)
    excluded = set(STOP_WORDS) | {word for keyword in plan.brand.keywords for word in words_of(keyword)}
    terms = rising_terms(_texts(session, window), _texts(session, baseline), excluded)
    rows = session.execute(
        select(Mention, SentimentCorrection.label)
        .outerjoin(SentimentCorrection, SentimentCorrection.mention_id == Mention.id)
        .where(window).order_by(Mention.author_followers.desc(), Mention.id).limit(TOP_BY_REACH)
    ).all()
    posts = []
    for mention, corrected in rows:
        total = engagement(mention.likes, mention.shares, mention.replies)
        posts.append(TopPost(
            mention_id=mention.id, platform=mention.platform, author=mention.author,
            followers=mention.author_followers, likes=mention.likes, shares=mention.shares,
            replies=mention.replies, engagement=total, influence=round(influence(mention.author_followers, total), 3),
            text=mention.text, url=mention.url, sentiment=corrected or mention.sentiment_label,
            created_at=mention.created_at.isoformat(),
        ))
    grouped = window_narratives(session, window, baseline, plan.brand.keywords, rumours=())
    return SpikeExplanation(rising_terms=terms, top_posts=posts,
                            narratives=narrative_lines(grouped, TOP_NARRATIVES))
