"""Replay the timestamped dev sets through the real spike detector: alerts per day, before and after.

    PYTHONPATH=. python bench/alerts_replay.py                 # apple and sanders, scored by War Room
    PYTHONPATH=. python bench/alerts_replay.py --labels human  # the sets' human labels instead

Each set (`../shared/data` beside the checkout, or --data) is stored in a scratch SQLite database at its own
timestamps, with sentiment from War Room's scorer (what ingest would store) or the human labels. Then a
clock steps through the set every min(poll 5 min, window) as the scheduler would, and at each step the
real `evaluate` and `record_spike_alert` run (no incident open, so the cooldown applies). Rule sets:

- before: today's rules (`negative_share` ≥ 50 % absolute, one window);
- after: `negative_points` 20 above the baseline's own negative share (the plan default);
- after+persist: the same with `persistence: 2`.

Printed per set and rule: alerts per day (on days that had mentions), how many alerts had only a
negativity reason, and the busiest day's first alert (time, and minutes after that day's first post).
"""

from __future__ import annotations

import argparse
import csv
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import delete
from sqlalchemy.orm import Session, sessionmaker

from bot.crisis.plan import SpikeThresholds
from bot.listening.sentiment import score_texts
from bot.listening.spikes import evaluate, record_spike_alert
from models import Base, Mention, SpikeAlert, make_engine, make_session_factory, transaction

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SETS = {"apple": "apple_twitter_sentiment_dfe.csv", "sanders": "sanders_twitter_sentiment.csv"}
RULES = {
    "before": SpikeThresholds(negative_points=None, persistence=1),
    "after": SpikeThresholds(),
    "after+persist": SpikeThresholds(persistence=2),
}
POLL = timedelta(minutes=5)


@dataclass(frozen=True)
class Alert:
    at: datetime
    reasons: list[str]

    @property
    def negativity_only(self) -> bool:
        return all("negative" in reason for reason in self.reasons)


def read_set(path: Path) -> list[tuple[str, str, str, datetime]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return [(row["id"], row["text"], row["label"], datetime.fromisoformat(row["created_at"]))
                for row in csv.DictReader(handle) if row["created_at"]]


def replay(sessions: sessionmaker[Session], thresholds: SpikeThresholds, start: datetime, end: datetime) -> list[Alert]:
    with transaction(sessions) as session:
        session.execute(delete(SpikeAlert))
    alerts = []
    now = start
    step = min(POLL, timedelta(minutes=thresholds.window_minutes))
    while now <= end:
        with transaction(sessions) as session:
            verdict = evaluate(session, thresholds, now)
            if verdict.is_spike and record_spike_alert(session, thresholds, verdict) is not None:
                alerts.append(Alert(verdict.window_end, verdict.reasons))
        now += step
    return alerts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--labels", choices=("scorer", "human"), default="scorer")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="alerts-replay-"))
    try:
        for name, filename in SETS.items():
            rows = read_set(args.data / filename)
            labels = ([row[2] for row in rows] if args.labels == "human"
                      else [score.label for score in score_texts([row[1] for row in rows])])
            engine = make_engine(f"sqlite:///{folder / name}.db")
            Base.metadata.create_all(engine)
            sessions = make_session_factory(engine)
            with transaction(sessions) as session:
                session.add_all(Mention(platform="twitter", external_id=row[0], text=row[1], created_at=row[3],
                                        ingested_at=row[3], source="bench", sentiment_label=label,
                                        sentiment_score=0.0) for row, label in zip(rows, labels, strict=True))
            per_day = Counter(row[3].date() for row in rows)
            busiest = max(per_day, key=lambda day: per_day[day])
            first_post = min(row[3] for row in rows if row[3].date() == busiest)
            start = min(row[3] for row in rows).replace(second=0, microsecond=0)
            end = max(row[3] for row in rows) + timedelta(minutes=30)
            negative = sum(label == "negative" for label in labels) / len(labels)
            print(f"\n{name}: {len(rows):,} posts over {len(per_day)} days, {negative:.0%} negative "
                  f"({args.labels} labels); busiest day {busiest} with {per_day[busiest]:,} posts")
            for rule, thresholds in RULES.items():
                alerts = replay(sessions, thresholds, start, end)
                days = Counter(alert.at.date() for alert in alerts)
                on_busiest = [alert for alert in alerts if alert.at.date() == busiest]
                first = (f"{on_busiest[0].at:%H:%M} UTC, {(on_busiest[0].at - first_post).total_seconds() / 60:.0f} "
                         f"min after the day's first post ({'; '.join(on_busiest[0].reasons)})"
                         if on_busiest else "none")
                worst = max(days.values(), default=0)
                print(f"  {rule:14} {len(alerts):3} alerts, {len(alerts) / len(per_day):.1f}/day over days with posts "
                      f"(max {worst} in a day), {sum(a.negativity_only for a in alerts)} from negativity alone; "
                      f"busiest day: {len(on_busiest)} alerts, first at {first}")
            engine.dispose()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
