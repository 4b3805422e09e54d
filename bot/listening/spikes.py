"""Brand-wide spike detection with the plan's `spike` thresholds, and the alert record that keeps it quiet.

Every stored mention counts (everything War Room ingests is the brand's monitoring output). The
window is the last `window_minutes` up to the check (to the whole minute); the baseline is the
`baseline_windows` windows before it. A spike needs at least `min_count` mentions in the window and
any one of:

- z-score ≥ `z_score`, where z = (count − baseline mean) / baseline standard deviation, the deviation
  floored at 1 so a perfectly flat baseline does not make every extra post infinite;
- count ≥ `ratio` × baseline mean (a baseline mean of 0 counts as 1);
- negativity: the window's negative share at least `negative_points` percentage points above the
  baseline windows' own negative share (so a brand whose normal traffic is mostly complaints is not
  alerted for being complained about); with `negative_points: null`, or a baseline with no posts, the
  absolute rule: negative share ≥ `negative_share`.

With `persistence: 2` the previous window (against its own baseline) must have crossed too.

Nagging is bounded across processes: the SpikeAlert row is inserted and checked in one transaction
that first serialises checkers (a PostgreSQL advisory lock; SQLite's write lock), and `window_end` is
unique. With no open incident, at most one alert per `cooldown_minutes`. While an open incident covers
the brand (every incident's mentions include the brand's keywords), the alert channel stays quiet and
a note goes to the incident, only when the window's volume is at least double the last alert's.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Integer, case, delete, false, func, select, text, update
from sqlalchemy.orm import Session

from bot.crisis.plan import SpikeThresholds
from models import Mention, SpikeAlert

# Any fixed number: the key of the advisory lock that serialises spike checks on PostgreSQL.
SPIKE_LOCK_KEY = 0x5741_5252_4F4F_4D53 & 0x7FFF_FFFF_FFFF_FFFF


@dataclass(frozen=True)
class SpikeVerdict:
    """The figures of one check and, when it is a spike, why."""

    window_start: datetime
    window_end: datetime
    count: int
    negative: int
    baseline: list[int]
    mean: float
    z: float
    ratio: float
    negative_share: float
    reasons: list[str]
    baseline_negative_share: float | None = None  # None: the baseline windows had no posts
    unconfirmed: list[str] = field(default_factory=list)  # crossed, waiting for a second window

    @property
    def shift_points(self) -> float | None:
        """Percentage points the window's negative share stands above the baseline's (None: no baseline)."""
        if self.baseline_negative_share is None:
            return None
        return round((self.negative_share - self.baseline_negative_share) * 100, 1)

    @property
    def is_spike(self) -> bool:
        return bool(self.reasons)

    @property
    def minutes(self) -> int:
        return round((self.window_end - self.window_start).total_seconds() / 60)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["window_start"] = self.window_start.isoformat()
        data["window_end"] = self.window_end.isoformat()
        data["shift_points"] = self.shift_points
        return data


def judge(thresholds: SpikeThresholds, count: int, negative: int, baseline: list[int],
          window_start: datetime, window_end: datetime,
          baseline_negative: list[int] | None = None) -> SpikeVerdict:
    """Apply the thresholds to a window's count and negatives against baseline window counts (and, when
    given, the baseline windows' negatives, for the shift rule)."""
    mean = statistics.fmean(baseline) if baseline else 0.0
    deviation = max(statistics.pstdev(baseline) if len(baseline) > 1 else 0.0, 1.0)
    z = (count - mean) / deviation
    ratio = count / max(mean, 1.0)
    share = negative / count if count else 0.0
    baseline_total = sum(baseline)
    baseline_share: float | None = None
    if baseline_negative is not None and baseline_total:
        baseline_share = sum(baseline_negative) / baseline_total
    reasons: list[str] = []
    if count >= thresholds.min_count:
        if z >= thresholds.z_score:
            reasons.append(f"z-score {z:.1f} ≥ {thresholds.z_score:g}")
        if ratio >= thresholds.ratio:
            reasons.append(f"{ratio:.1f}× the baseline ≥ {thresholds.ratio:g}×")
        if thresholds.negative_points is not None and baseline_share is not None:
            points = (share - baseline_share) * 100
            if points >= thresholds.negative_points:
                reasons.append(f"{share:.0%} negative, {points:.0f} points above the baseline's "
                               f"{baseline_share:.0%} ≥ {thresholds.negative_points:g}")
        elif share >= thresholds.negative_share:
            reasons.append(f"{share:.0%} negative ≥ {thresholds.negative_share:.0%}")
    return SpikeVerdict(window_start, window_end, count, negative, baseline, round(mean, 3),
                        round(z, 3) if math.isfinite(z) else 0.0, round(ratio, 3), round(share, 4), reasons,
                        None if baseline_share is None else round(baseline_share, 4))


def window_counts(session: Session, end: datetime, minutes: int, windows: int,
                  condition: Any = None) -> list[tuple[int, int]]:
    """(count, negative count) of `windows` consecutive windows ending at `end`, newest first.

    One indexed range scan; each row's window is found by comparing with the window edges
    (portable SQL, no date arithmetic).
    """
    width = timedelta(minutes=minutes)
    start = end - width * windows
    edges = [end - width * (index + 1) for index in range(windows)]
    bucket = case(*[(Mention.created_at >= edge, index) for index, edge in enumerate(edges)], else_=windows)
    negative = func.sum(case((Mention.sentiment_label == "negative", 1), else_=0)).cast(Integer)
    query = (
        select(bucket.label("bucket"), func.count().label("n"), negative.label("neg"))
        .where(Mention.created_at >= start, Mention.created_at < end)
        .group_by(text("bucket"))
    )
    if condition is not None:
        query = query.where(condition)
    counts = [(0, 0)] * windows
    for index, count, negatives in session.execute(query):
        if 0 <= index < windows:
            counts[index] = (int(count), int(negatives or 0))
    return counts


def judge_windows(thresholds: SpikeThresholds, counts: list[tuple[int, int]], end: datetime) -> SpikeVerdict:
    """Judge the newest of `counts` ((count, negatives) per window, newest first, ending at `end`), and
    with `persistence: 2` require the window before to have crossed against its own baseline too."""
    width = timedelta(minutes=thresholds.window_minutes)
    windows = thresholds.baseline_windows

    def at(index: int) -> SpikeVerdict:
        count, negative = counts[index]
        before = counts[index + 1 : index + 1 + windows]
        return judge(thresholds, count, negative, [c for c, _ in before], end - width * (index + 1),
                     end - width * index, [n for _, n in before])

    verdict = at(0)
    if thresholds.persistence > 1 and verdict.is_spike and not at(1).is_spike:
        return replace(verdict, reasons=[], unconfirmed=verdict.reasons)
    return verdict


def evaluate(session: Session, thresholds: SpikeThresholds, now: datetime) -> SpikeVerdict:
    """Judge the brand-wide window ending at `now` (to the minute) against its baseline."""
    end = now.replace(second=0, microsecond=0)
    counts = window_counts(session, end, thresholds.window_minutes,
                           thresholds.baseline_windows + thresholds.persistence)
    return judge_windows(thresholds, counts, end)


def record_spike_alert(
    session: Session, thresholds: SpikeThresholds, verdict: SpikeVerdict, *, covered: bool = False
) -> SpikeAlert | None:
    """Insert the alert for `verdict` unless it must stay quiet (None): within the cooldown, or, when an
    open incident `covered` the brand, unless the volume is at least double the last alert's.

    Call inside a transaction and commit before posting, so a second process sees the row.
    """
    _serialise_checkers(session)
    if covered:
        last = session.scalars(select(SpikeAlert).order_by(SpikeAlert.window_end.desc()).limit(1)).first()
        if last is not None and (last.window_end >= verdict.window_end
                                 or verdict.count < 2 * int((last.figures or {}).get("count", 0))):
            return None
    else:
        cooldown_start = verdict.window_end - timedelta(minutes=thresholds.cooldown_minutes)
        recent = session.scalar(
            select(func.count()).select_from(SpikeAlert).where(SpikeAlert.window_end > cooldown_start)
        )
        if recent:
            return None
    alert = SpikeAlert(window_end=verdict.window_end, fired_at=verdict.window_end, figures=verdict.as_json())
    session.add(alert)
    session.flush()
    return alert


def _serialise_checkers(session: Session) -> None:
    """Make concurrent spike checks run one after another until their transactions end."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(SPIKE_LOCK_KEY)))
    else:
        # A write that changes nothing still takes SQLite's write lock for the rest of the
        # transaction, so a second checker waits (busy_timeout) and then sees our row.
        session.execute(update(SpikeAlert).where(false()).values(channel_id=None))


def alert_severity(thresholds: SpikeThresholds, verdict: SpikeVerdict) -> str:
    """The severity an alert suggests: sev2 when negativity jumped (twice the points threshold) or the
    window is mostly negative, or volume is far off the baseline."""
    shift, points = verdict.shift_points, thresholds.negative_points
    if (shift is not None and points is not None and shift >= 2 * points) \
            or verdict.negative_share >= thresholds.negative_share or verdict.z >= 2 * thresholds.z_score:
        return "sev2"
    return "sev3"


def mark_alert_posted(session: Session, alert_id: int, channel_id: str | None, slack_ts: str | None) -> None:
    """Remember where the alert went."""
    session.execute(update(SpikeAlert).where(SpikeAlert.id == alert_id).values(channel_id=channel_id,
                                                                                 slack_ts=slack_ts))


def withdraw_alert(session: Session, alert_id: int) -> None:
    """Forget an alert Slack would not take, so it does not silence the next check's alert."""
    session.execute(delete(SpikeAlert).where(SpikeAlert.id == alert_id))
