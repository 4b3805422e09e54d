"""The scheduler: due digests posted once, jobs re-registered from the tables after a restart."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta

from sqlalchemy import func, select

from bot.background.runtime import Runtime, build_runtime
from bot.background.scheduler import Scheduler
from bot.demo.slack_emulator import SlackEmulator
from bot.infra.settings import Settings
from handlers.slack_gateway import job_gateway
from models import Digest, Incident, transaction, utcnow
from models.incidents import RESOLVED
from tests.fixtures_mentions import add_mentions, make_incident


def digest_count(runtime: Runtime) -> int:
    with transaction(runtime.sessions) as session:
        return int(session.scalar(select(func.count()).select_from(Digest)) or 0)


def next_digest_at(runtime: Runtime, incident_id: int) -> datetime | None:
    with transaction(runtime.sessions) as session:
        incident = session.get(Incident, incident_id)
        assert incident is not None
        return incident.next_digest_at


def test_a_digest_missed_for_several_windows_is_posted_once(
    runtime: Runtime, emulator: SlackEmulator
) -> None:
    now = utcnow()
    due = now - timedelta(minutes=95)  # sev2: every 30 min, so three windows were missed
    incident = make_incident(runtime, emulator, next_digest_at=due)
    add_mentions(runtime, [{"text": "acme air delayed", "created_at": now - timedelta(minutes=5)}])
    scheduler = Scheduler(runtime, job_gateway(runtime))

    posted = scheduler.run_due_digests(now)
    assert len(posted) == 1
    assert next_digest_at(runtime, incident.id) == due + timedelta(minutes=120)  # the next slot after now
    assert scheduler.run_due_digests(now + timedelta(minutes=1)) == []
    assert digest_count(runtime) == 1
    assert len([m for m in emulator.messages(incident.channel_id or "") if m.get("blocks")]) == 1
    assert len(scheduler.run_due_digests(now + timedelta(minutes=26))) == 1


def test_two_schedulers_racing_for_one_digest_post_it_once(
    runtime: Runtime, settings: Settings, emulator: SlackEmulator
) -> None:
    now = utcnow()
    incident = make_incident(runtime, emulator, next_digest_at=now - timedelta(minutes=1))
    other = build_runtime(settings, runtime.plan)
    results: list[int | None] = []
    try:
        schedulers = [Scheduler(runtime, job_gateway(runtime)), Scheduler(other, job_gateway(other))]
        threads = [
            threading.Thread(target=lambda s=s: results.append(s.run_digest(incident.id, now)))
            for s in schedulers
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        other.engine.dispose()
    assert len(results) == 2 and results.count(None) == 1
    assert digest_count(runtime) == 1


def test_restart_re_registers_jobs_and_posts_a_due_digest_once(
    runtime: Runtime, settings: Settings, emulator: SlackEmulator
) -> None:
    now = utcnow()
    due = now - timedelta(minutes=70)
    incident = make_incident(runtime, emulator, next_digest_at=due)
    resolved = make_incident(runtime, emulator, next_digest_at=now - timedelta(minutes=5))
    with transaction(runtime.sessions) as session:
        row = session.get(Incident, resolved.id)
        assert row is not None
        row.status = RESOLVED

    first = Scheduler(runtime, job_gateway(runtime))
    first.start()
    try:
        emulator.wait_for(lambda _: digest_count(runtime) == 1)
        # After running, the job re-registers itself for the next slot on the cadence.
        emulator.wait_for(lambda _: f"digest:{incident.id}" in first.job_ids())
        assert f"digest:{resolved.id}" not in first.job_ids()
    finally:
        first.shutdown()
    moved = next_digest_at(runtime, incident.id)
    assert moved is not None and moved > now

    # A new process on the same database: the job comes back from the table, nothing is re-posted.
    restarted_runtime = build_runtime(settings, runtime.plan)
    restarted = Scheduler(restarted_runtime, job_gateway(restarted_runtime))
    restarted.start()
    try:
        job = restarted._scheduler.get_job(f"digest:{incident.id}")
        assert job is not None and job.next_run_time == moved
        assert job.args == (incident.id,)
        time.sleep(0.3)
        assert digest_count(runtime) == 1
    finally:
        restarted.shutdown()
        restarted_runtime.engine.dispose()
    assert len([m for m in emulator.messages(incident.channel_id or "") if m.get("blocks")]) == 1


def test_sync_follows_incidents_opened_and_resolved_elsewhere(
    runtime: Runtime, emulator: SlackEmulator
) -> None:
    scheduler = Scheduler(runtime, job_gateway(runtime))
    scheduler.sync()
    assert not any(job.startswith("digest:") for job in scheduler.job_ids())
    incident = make_incident(runtime, emulator, next_digest_at=utcnow() + timedelta(minutes=30))
    scheduler.sync()
    assert f"digest:{incident.id}" in scheduler.job_ids()
    with transaction(runtime.sessions) as session:
        row = session.get(Incident, incident.id)
        assert row is not None
        row.status = RESOLVED
    scheduler.sync()
    assert f"digest:{incident.id}" not in scheduler.job_ids()
