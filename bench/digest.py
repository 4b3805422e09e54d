"""Digest computation time with 1,000,000 stored mentions.

    python bench/digest.py                                   # SQLite file in a temp folder
    python bench/digest.py --database-url postgresql://postgres@127.0.0.1:5432/test

Seeds mentions spread over 30 days (bulk executemany on SQLite, COPY on PostgreSQL, into a scratch
database that is dropped afterwards) with a crisis burst in the last hours, ~80% of them matching
the brand's keywords; sentiment labels are assigned at random (the digest reads stored labels, it
never re-scores). Then times `compute_digest` (median of several runs) for an sev2 incident
(30-minute window, outage playbook, two open rumours) opened 6 hours ago and one opened 3 days ago.
Target: ≤ 250 ms.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bot.crisis.plan import BUNDLED_PLAN, load_plan
from bot.infra.settings import normalise_database_url
from bot.listening.digests import compute_digest, record_digest
from models import Base, Incident, Rumour, make_engine, make_session_factory, transaction

BRAND = ["Acme Air", "acmeair", "@AcmeAir", "ACME AIR"]
WORDS = [
    "flight",
    "delayed",
    "again",
    "refund",
    "cancelled",
    "crew",
    "lovely",
    "gate",
    "bag",
    "lost",
    "hours",
    "waiting",
    "app",
    "down",
    "booking",
    "thanks",
    "great",
    "terrible",
    "service",
    "never",
    "boarding",
    "pilots",
    "strike",
    "tomorrow",
    "weather",
    "seat",
    "upgrade",
    "food",
    "london",
    "paris",
    "customer",
    "support",
    "phone",
    "queue",
]
LABELS = ("negative", "neutral", "positive")
COLUMNS = (
    "platform",
    "external_id",
    "text",
    "url",
    "author",
    "author_followers",
    "likes",
    "shares",
    "replies",
    "lang",
    "created_at",
    "ingested_at",
    "source",
    "sentiment_label",
    "sentiment_score",
)


def rows(count: int, now: datetime, seed: int = 1) -> list[tuple[object, ...]]:
    rng = random.Random(seed)
    burst = count // 50  # 2% in the last 3 hours: the crisis
    out: list[tuple[object, ...]] = []
    for n in range(count):
        seconds = rng.randint(1, 3 * 3600) if n < burst else rng.randint(1, 30 * 86400)
        words = [rng.choice(WORDS) for _ in range(rng.randint(5, 18))]
        if rng.random() < 0.8:
            words.insert(rng.randint(0, len(words)), rng.choice(BRAND))
        label = rng.choices(LABELS, weights=(3, 5, 2))[0]
        out.append(
            (
                "bench",
                str(n),
                " ".join(words),
                f"https://social.example/{n}",
                f"user{rng.randint(1, 50_000)}",
                int(rng.paretovariate(1.2) * 50),
                rng.randint(0, 40),
                rng.randint(0, 10),
                rng.randint(0, 8),
                "en",
                now - timedelta(seconds=seconds),
                now,
                "bench",
                label,
                {"negative": -0.6, "neutral": 0.0, "positive": 0.6}[label],
            )
        )
    # Mentions arrive roughly in time order, so they are stored that way (row order follows created_at).
    out.sort(key=lambda row: row[10])  # type: ignore[arg-type,return-value]
    return out


def seed_sqlite(url: str, data: list[tuple[object, ...]]) -> None:
    import sqlite3

    path = make_url(url).database or ""
    connection = sqlite3.connect(path)
    marks = ", ".join("?" * len(COLUMNS))

    def stored(value: object) -> object:  # what UTCDateTime stores on SQLite: naive UTC text
        return value.replace(tzinfo=None).isoformat(" ") if isinstance(value, datetime) else value

    naive = [tuple(stored(value) for value in row) for row in data]
    with connection:
        connection.executemany(f"INSERT INTO mentions ({', '.join(COLUMNS)}) VALUES ({marks})", naive)
    connection.execute("ANALYZE")
    connection.close()


def seed_postgres(url: str, data: list[tuple[object, ...]]) -> None:
    import psycopg

    with psycopg.connect(
        make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    ) as conn:
        with conn.cursor() as cursor, cursor.copy(f"COPY mentions ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            for row in data:
                copy.write_row(row)
        conn.execute("ANALYZE mentions")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="a PostgreSQL server to make a scratch database on")
    parser.add_argument("--mentions", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="warroom-bench-"))
    scratch = None
    if args.database_url:
        base = make_url(normalise_database_url(args.database_url))
        scratch = f"warroom_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        admin = create_engine(base, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{scratch}"'))
        url = base.set(database=scratch).render_as_string(hide_password=False)
    else:
        url = f"sqlite:///{folder / 'bench.db'}"
    engine = make_engine(url)
    try:
        Base.metadata.create_all(engine)
        now = datetime.now(UTC)
        started = time.perf_counter()
        data = rows(args.mentions, now)
        (seed_postgres if scratch else seed_sqlite)(url, data)
        print(f"seeded {len(data):,} mentions in {time.perf_counter() - started:.1f} s")
        del data
        plan = load_plan(BUNDLED_PLAN)
        sessions = make_session_factory(engine)
        incidents = {}
        with transaction(sessions) as session:
            for label, age in (("6 hours", timedelta(hours=6)), ("3 days", timedelta(days=3))):
                incident = Incident(
                    title="Flights delayed",
                    severity="sev2",
                    playbook="outage",
                    status="open",
                    opened_by="U1",
                    opened_at=now - age,
                    channel_id=f"C{label[0]}",
                )
                session.add(incident)
                session.flush()
                session.add_all(
                    [
                        Rumour(
                            incident_id=incident.id,
                            claim="Acme Air pilots on strike tomorrow",
                            created_by="U1",
                        ),
                        Rumour(
                            incident_id=incident.id,
                            claim="Refunds cancelled for London flights",
                            created_by="U1",
                        ),
                    ]
                )
                incidents[label] = incident.id
        backend = url.split(":", 1)[0].split("+")[0]
        for label, incident_id in incidents.items():
            # Cold: the first digest of the incident (nothing to carry forward). It is then stored,
            # as the scheduler does, and the next digest (30 min later, the cadence) is timed warm.
            with transaction(sessions) as session:
                began = time.perf_counter()
                first = compute_digest(session, plan, incident_id, now - timedelta(minutes=30))
                cold = (time.perf_counter() - began) * 1000
                record_digest(
                    session, first, kind="scheduled", requested_by=None, channel_id="C1", slack_ts="1"
                )
            timings, cpu = [], []
            for _ in range(args.runs):
                with transaction(sessions) as session:
                    began, began_cpu = time.perf_counter(), time.process_time()
                    figures = compute_digest(session, plan, incident_id, now)
                    timings.append((time.perf_counter() - began) * 1000)
                    cpu.append((time.process_time() - began_cpu) * 1000)
            print(
                f"{backend}: incident opened {label} ago, {args.mentions:,} mentions: digest median "
                f"{statistics.median(timings):.0f} ms (max {max(timings):.0f} ms, {args.runs} runs; "
                f"CPU in this process {statistics.median(cpu):.0f} ms: all the work on SQLite, the client's "
                f"share on PostgreSQL); "
                f"first digest of the incident (cold, nothing to carry forward) {cold:.0f} ms — window "
                f"volume {figures.volume:,}, {figures.total_since_open:,} since the lookback, "
                f"{len(figures.series)} buckets"
            )
    finally:
        engine.dispose()
        if scratch:
            admin = create_engine(
                make_url(normalise_database_url(args.database_url)), isolation_level="AUTOCOMMIT"
            )
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)'))
            admin.dispose()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
