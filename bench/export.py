"""Export speed and memory: an incident with 10,000 (and 50,000) timeline events on SQLite, every format.

    python bench/export.py [--events 10000 50000]

Each format is exported once to warm up (imports, matplotlib's font cache), then timed into a sink
that keeps nothing: best of three, wall clock and CPU time (CPU time stays meaningful when the machine
is busy). Peak memory is measured with tracemalloc around the same export; flat memory means the 50k
peak stays close to the 10k peak.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert  # noqa: E402

from bot.crisis import timeline  # noqa: E402
from bot.crisis.plan import BUNDLED_PLAN, load_plan  # noqa: E402
from bot.exports import FORMATS, stream_export  # noqa: E402
from models import Base, Incident, Mention, TimelineEvent, make_engine, make_session_factory, transaction  # noqa: E402

REPEATS = 3  # best of three: the machine may be busy with other work
KINDS = [
    timeline.STATUS_POSTED,
    timeline.FACT_ADDED,
    timeline.DECISION_LOGGED,
    timeline.DRAFT_REQUESTED,
    timeline.DIGEST_POSTED,
    timeline.ROLE_ASSIGNED,
]


class Sink:
    """Counts what is written and keeps nothing, so memory reflects the exporter alone."""

    def __init__(self) -> None:
        self.size = 0

    def write(self, chunk: str) -> None:
        self.size += len(chunk)


def seed(sessions, events: int) -> int:  # type: ignore[no-untyped-def]
    opened = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
    with transaction(sessions) as session:
        incident = Incident(
            title=f"Bench incident with {events} events",
            severity="sev2",
            playbook="outage",
            status="resolved",
            channel_name=f"crisis-bench-{events}",
            opened_by="UBENCH1",
            opened_at=opened,
            resolved_at=opened + timedelta(hours=6),
            resolved_by="UBENCH1",
        )
        session.add(incident)
        session.flush()
        step = timedelta(hours=6) / events
        session.execute(
            insert(TimelineEvent),
            [
                {
                    "incident_id": incident.id,
                    "kind": KINDS[n % len(KINDS)],
                    "actor": f"UBENCH{n % 7}",
                    "text": f"Event {n}: <b>status</b> update, =SUM(A1) & more text about the incident",
                    "data": {"n": n},
                    "at": opened + step * n,
                }
                for n in range(events)
            ],
        )
        session.execute(
            insert(Mention),
            [
                {
                    "platform": "x",
                    "external_id": f"{events}-{n}",
                    "text": f"acme air delayed again {n}",
                    "created_at": opened - timedelta(hours=2) + timedelta(minutes=n % 600),
                    "sentiment_label": ("negative", "neutral", "positive")[n % 3],
                    "sentiment_score": 0.0,
                    "author_followers": 0,
                    "likes": 0,
                    "shares": 0,
                    "replies": 0,
                }
                for n in range(2000)
            ],
        )
        return incident.id


def export_once(sessions, incident_id: int, fmt: str, plan) -> int:  # type: ignore[no-untyped-def]
    sink = Sink()
    with sessions() as session:
        for chunk in stream_export(session, incident_id, fmt, plan, {}):
            sink.write(chunk)
    return sink.size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, nargs="+", default=[10_000, 50_000])
    args = parser.parse_args()
    plan = load_plan(BUNDLED_PLAN)
    with tempfile.TemporaryDirectory() as folder:
        engine = make_engine(f"sqlite:///{folder}/bench.db")
        Base.metadata.create_all(engine)
        sessions = make_session_factory(engine)
        incidents = {events: seed(sessions, events) for events in args.events}
        for fmt in FORMATS:  # warm-up
            export_once(sessions, incidents[args.events[0]], fmt, plan)
        print(f"{'events':>7} {'format':<6} {'seconds':>8} {'cpu s':>6} {'size':>12} {'peak MiB':>9}")
        for events, incident_id in incidents.items():
            for fmt in FORMATS:
                timings, cpu_timings = [], []
                for _ in range(REPEATS):
                    started, cpu_started = time.perf_counter(), time.process_time()
                    size = export_once(sessions, incident_id, fmt, plan)
                    timings.append(time.perf_counter() - started)
                    cpu_timings.append(time.process_time() - cpu_started)
                elapsed, cpu = min(timings), min(cpu_timings)
                tracemalloc.start()
                export_once(sessions, incident_id, fmt, plan)
                peak = tracemalloc.get_traced_memory()[1] / 2**20
                tracemalloc.stop()
                print(f"{events:>7} {fmt:<6} {elapsed:>8.3f} {cpu:>6.3f} {size:>12,} {peak:>9.1f}")
        engine.dispose()


if __name__ == "__main__":
    main()
