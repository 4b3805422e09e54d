"""Catch-up speed: gathering one person's catch-up (and its prompt) on an incident with many timeline
events and mentions, on SQLite.

    python bench/catchup.py [--events 10000 50000] [--mentions 50000]

Half the events are the person's "since you last looked" window. Best of three, wall clock and CPU
time; the prompt's size shows it stays bounded however long the incident.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert  # noqa: E402

from bot.assistant.catchup import gather_catchup  # noqa: E402
from bot.assistant.summary import build_catchup_messages, deterministic_summary  # noqa: E402
from bot.crisis import timeline  # noqa: E402
from bot.crisis.plan import BUNDLED_PLAN, load_plan  # noqa: E402
from models import (  # noqa: E402
    Base,
    CatchupMark,
    Fact,
    Incident,
    Mention,
    TimelineEvent,
    make_engine,
    make_session_factory,
    transaction,
)

REPEATS = 3
KINDS = [timeline.STATUS_POSTED, timeline.FACT_ADDED, timeline.DECISION_LOGGED, timeline.DRAFT_REQUESTED,
         timeline.DIGEST_POSTED, timeline.ROLE_ASSIGNED]
OPENED = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)


def seed(sessions, events: int, mentions: int) -> int:  # type: ignore[no-untyped-def]
    with transaction(sessions) as session:
        incident = Incident(title="Bench", severity="sev2", playbook="outage", status="open",
                            channel_id="CBENCH", channel_name="crisis-bench", opened_by="UBENCH1", opened_at=OPENED)
        session.add(incident)
        session.flush()
        session.add_all(Fact(incident_id=incident.id, text=f"fact {i}", added_by="UBENCH1",
                             added_at=OPENED + timedelta(minutes=i)) for i in range(30))
        session.execute(insert(TimelineEvent), [
            {"incident_id": incident.id, "kind": KINDS[i % len(KINDS)], "text": f"event {i} " + "words " * 20,
             "actor": "UBENCH1", "data": {}, "at": OPENED + timedelta(seconds=i)} for i in range(events)])
        session.execute(insert(Mention), [
            {"platform": "bluesky", "external_id": f"m{i}", "text": f"acme air bag lost {i}", "author": f"a{i % 500}",
             "created_at": OPENED + timedelta(seconds=i), "sentiment_label": ("negative", "neutral")[i % 2],
             "sentiment_score": -0.5, "likes": i % 50, "shares": i % 7} for i in range(mentions)])
        seen = OPENED + timedelta(seconds=events // 2)
        session.add(CatchupMark(incident_id=incident.id, user_id="UREADER", seen_at=seen))
        return incident.id


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, nargs="+", default=[10000, 50000])
    parser.add_argument("--mentions", type=int, default=50000)
    args = parser.parse_args()
    plan = load_plan(BUNDLED_PLAN)
    for events in args.events:
        with tempfile.TemporaryDirectory() as folder:
            engine = make_engine(f"sqlite:///{folder}/bench.db")
            Base.metadata.create_all(engine)
            sessions = make_session_factory(engine)
            incident_id = seed(sessions, events, args.mentions)
            now = OPENED + timedelta(seconds=max(events, args.mentions) + 60)
            best_wall = best_cpu = float("inf")
            for _ in range(REPEATS):
                wall, cpu = time.perf_counter(), time.process_time()
                with transaction(sessions) as session:
                    catchup = gather_catchup(session, plan, incident_id, "UREADER", now)
                system, user = build_catchup_messages(catchup, plan.brand.name)
                deterministic_summary(catchup, "bench")
                best_wall = min(best_wall, time.perf_counter() - wall)
                best_cpu = min(best_cpu, time.process_time() - cpu)
            print(f"{events:>6} events, {args.mentions} mentions: catch-up gathered in {best_wall * 1000:.0f} ms wall "
                  f"({best_cpu * 1000:.0f} ms CPU); window {catchup.timeline_total} entries, "
                  f"{catchup.chatter.volume} mentions; prompt {len(system) + len(user):,} characters")
            engine.dispose()


if __name__ == "__main__":
    main()
