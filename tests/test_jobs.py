"""The job queue: what /crisis acknowledged is a committed row; each job runs once; a dead worker's job is redone."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select, update
from sqlalchemy.exc import OperationalError

from bot.background.runtime import Runtime, build_runtime
from bot.demo.signed_slack import SlackClient
from bot.demo.slack_emulator import SlackEmulator
from bot.queue import intake as intake_module
from bot.queue import jobs
from bot.queue.worker import Worker
from bot.server import InProcessApp
from handlers import tables
from models import Fact, Job, transaction, utcnow
from models.jobs import DONE, FAILED, QUEUED, RUNNING
from tests.conftest import LEAD, MONITOR, SIGNING_SECRET, make_settings
from tests.fixtures_lifecycle import open_incident, wait_until
from tests.fixtures_reliability import hold_job_writes


def _queue(runtime: Runtime, count: int, kind: str = "test") -> list[int]:
    with transaction(runtime.sessions) as session:
        return [session.execute(insert(Job).values(kind=kind, payload={"n": n}).returning(Job.id)).scalar_one()
                for n in range(count)]


def _all_at_once(target: Callable[..., object], calls: list[tuple[Any, ...]]) -> None:
    """Call `target(*args)` for every args in `calls`, each on a thread of its own, and wait for all."""
    threads = [threading.Thread(target=target, args=args) for args in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)


def _statuses(runtime: Runtime) -> Counter[str]:
    with transaction(runtime.sessions) as session:
        return Counter(session.scalars(select(Job.status)).all())


def test_every_job_is_claimed_exactly_once_by_concurrent_workers(runtime: Runtime) -> None:
    _queue(runtime, 60)
    ran: list[int] = []
    lock = threading.Lock()

    def record(_runtime: Runtime, _kind: str, payload: dict[str, Any]) -> None:
        with lock:
            ran.append(payload["n"])

    workers = [Worker(runtime, record, threads=3, poll_seconds=0.01).start() for _ in range(3)]
    try:
        wait_until(lambda: _statuses(runtime)[DONE] == 60, timeout=30, what="all jobs done")
    finally:
        for worker in workers:
            worker.stop()
    assert sorted(ran) == list(range(60))


class _Told:
    """The worker's failure teller, recording who would be told what."""

    def __init__(self) -> None:
        self.told: list[tuple[str, dict[str, Any], str]] = []

    def __call__(self, _runtime: Runtime, kind: str, payload: dict[str, Any], reason: str) -> None:
        self.told.append((kind, payload, reason))


def _job(runtime: Runtime, job_id: int) -> Job:
    with transaction(runtime.sessions) as session:
        job = session.get(Job, job_id)
        assert job is not None
        session.expunge(job)
        return job


def _due_now(runtime: Runtime, job_id: int) -> None:
    with transaction(runtime.sessions) as session:  # make a retry due now rather than after its back-off
        session.execute(update(Job).where(Job.id == job_id).values(available_at=utcnow()))


def test_a_transient_failure_is_retried_then_failed_and_told_once(runtime: Runtime) -> None:
    [job_id] = _queue(runtime, 1)

    def database_down(_runtime: Runtime, _kind: str, _payload: dict[str, Any]) -> None:
        raise OperationalError("UPDATE incidents", {}, sqlite3.OperationalError("disk I/O error"))

    told = _Told()
    worker = Worker(runtime, database_down, threads=1, tell_failure=told)
    for attempt in range(1, jobs.MAX_ATTEMPTS + 1):
        _due_now(runtime, job_id)
        assert worker.run_once()
        job = _job(runtime, job_id)
        assert job.attempts == attempt and "disk I/O error" in (job.error or "")
        assert job.status == (QUEUED if attempt < jobs.MAX_ATTEMPTS else FAILED)
        assert len(told.told) == (0 if attempt < jobs.MAX_ATTEMPTS else 1)
    assert told.told == [("test", {"n": 0}, "the database is unavailable right now")]
    assert not worker.run_once()


def test_a_permanent_failure_is_failed_and_told_at_once_never_marked_done(runtime: Runtime) -> None:
    [job_id] = _queue(runtime, 1)

    def bug(_runtime: Runtime, _kind: str, _payload: dict[str, Any]) -> None:
        raise KeyError("channel")

    told = _Told()
    assert Worker(runtime, bug, threads=1, tell_failure=told).run_once()
    job = _job(runtime, job_id)
    assert (job.status, job.attempts, job.finished_at is not None) == (FAILED, 1, True)
    assert told.told == [("test", {"n": 0}, "an unexpected error (KeyError)")]


def _stale(runtime: Runtime, job_id: int) -> None:
    """What a worker killed mid-run leaves: a running job whose heartbeat stopped a while ago."""
    with transaction(runtime.sessions) as session:
        session.execute(update(Job).where(Job.id == job_id).values(
            heartbeat_at=utcnow() - jobs.STALE_AFTER - timedelta(seconds=1)))


def test_a_job_whose_worker_died_is_queued_again(runtime: Runtime) -> None:
    [job_id] = _queue(runtime, 1)
    with transaction(runtime.sessions) as session:
        claimed = jobs.claim_next(session, "dead-worker")
        assert claimed is not None and claimed.id == job_id
    with transaction(runtime.sessions) as session:
        assert jobs.requeue_stale(session).requeued == 0  # its heartbeat is fresh: its worker may be busy
    _stale(runtime, job_id)
    with transaction(runtime.sessions) as session:
        assert jobs.requeue_stale(session) == jobs.Recovered(requeued=1, exhausted=[])
    with transaction(runtime.sessions) as session:
        job = session.get(Job, job_id)
        assert job is not None and (job.status, job.claimed_by) == (QUEUED, None)
        again = jobs.claim_next(session, "live-worker")
        assert again is not None and again.attempts == 2
        assert session.get(Job, job_id).status == RUNNING  # type: ignore[union-attr]


def test_a_long_job_with_a_live_heartbeat_is_not_given_to_a_second_worker(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dead is judged by the heartbeat, not by when the job was claimed: a job still running long after
    its claim stays with its worker."""
    monkeypatch.setattr(jobs, "HEARTBEAT_SECONDS", 0.05)
    [job_id] = _queue(runtime, 1)
    started, release = threading.Event(), threading.Event()
    runs: list[int] = []

    def slow(_runtime: Runtime, _kind: str, payload: dict[str, Any]) -> None:
        runs.append(payload["n"])
        started.set()
        release.wait(10)

    worker = Worker(runtime, slow, threads=1, poll_seconds=0.01).start()
    try:
        assert started.wait(10)
        with transaction(runtime.sessions) as session:  # claimed long ago, as a 10-minute LLM call would be
            session.execute(update(Job).where(Job.id == job_id).values(
                claimed_at=utcnow() - timedelta(minutes=10), heartbeat_at=utcnow() - jobs.STALE_AFTER * 2))
        wait_until(lambda: _job(runtime, job_id).heartbeat_at > utcnow() - timedelta(seconds=5),  # type: ignore[operator]
                   what="a fresh heartbeat")
        with transaction(runtime.sessions) as session:
            assert jobs.requeue_stale(session).requeued == 0
            assert jobs.claim_next(session, "second-worker") is None
        release.set()
        wait_until(lambda: _job(runtime, job_id).status == DONE, what="the job done")
    finally:
        release.set()
        worker.stop()
    assert runs == [0]


def test_a_job_that_kills_its_worker_every_time_ends_failed_and_is_told(runtime: Runtime) -> None:
    [job_id] = _queue(runtime, 1)
    told = _Told()
    sweeper = Worker(runtime, lambda *_: None, threads=1, tell_failure=told)
    for attempt in range(1, jobs.MAX_ATTEMPTS + 1):
        with transaction(runtime.sessions) as session:
            claimed = jobs.claim_next(session, f"doomed-worker-{attempt}")
            assert claimed is not None and claimed.attempts == attempt
        _stale(runtime, job_id)  # the worker died running it
        recovered = sweeper.sweep()
        assert recovered.requeued == (1 if attempt < jobs.MAX_ATTEMPTS else 0)
    job = _job(runtime, job_id)
    assert (job.status, job.attempts) == (FAILED, jobs.MAX_ATTEMPTS)
    assert "stopped while running it" in (job.error or "")
    assert told.told == [("test", {"n": 0}, "it stopped its worker every time it ran")]
    assert sweeper.sweep() == jobs.Recovered(requeued=0, exhausted=[])  # told once


def test_finish_and_fail_only_by_the_worker_that_owns_the_attempt(runtime: Runtime) -> None:
    [job_id] = _queue(runtime, 1)
    with transaction(runtime.sessions) as session:
        first = jobs.claim_next(session, "slow-worker")
    assert first is not None
    _stale(runtime, job_id)  # the slow worker looked dead; its job was given to another
    with transaction(runtime.sessions) as session:
        jobs.requeue_stale(session)
    with transaction(runtime.sessions) as session:
        second = jobs.claim_next(session, "other-worker")
    assert second is not None and second.attempts == 2
    with transaction(runtime.sessions) as session:
        assert not jobs.finish(session, first, "slow-worker")
        assert jobs.fail(session, first, "slow-worker", "late", retry=True) == ""
        assert not jobs.finish(session, second, "slow-worker")  # the right attempt, the wrong worker
    assert (_job(runtime, job_id).status, _job(runtime, job_id).claimed_by) == (RUNNING, "other-worker")
    with transaction(runtime.sessions) as session:
        assert jobs.finish(session, second, "other-worker")
    assert _job(runtime, job_id).status == DONE


def test_a_stopping_worker_hands_its_unfinished_job_back_at_once(runtime: Runtime) -> None:
    [job_id] = _queue(runtime, 1)
    started, release = threading.Event(), threading.Event()

    def stuck(_runtime: Runtime, _kind: str, _payload: dict[str, Any]) -> None:
        started.set()
        release.wait(10)

    worker = Worker(runtime, stuck, threads=1, poll_seconds=0.01).start()
    try:
        assert started.wait(10)
        worker.stop(timeout=0.2)  # a deploy: the job is still running
        job = _job(runtime, job_id)
        assert (job.status, job.claimed_by, job.attempts) == (QUEUED, None, 0)
        with transaction(runtime.sessions) as session:  # the next worker takes it now, not after STALE_AFTER
            again = jobs.claim_next(session, "next-worker")
            assert again is not None and again.id == job_id and again.attempts == 1
    finally:
        release.set()


def test_an_acknowledged_command_survives_a_worker_that_is_down(
    database_url: str, emulator: SlackEmulator, plan,  # type: ignore[no-untyped-def]
) -> None:
    """The ack means a committed job: with no worker running, the fact waits in the queue and is recorded
    by the next worker, as after a crash of the process that acked it."""
    runtime = build_runtime(make_settings(database_url, emulator), plan)
    app = InProcessApp(runtime).start()
    try:
        slack = SlackClient(app.url, SIGNING_SECRET, emulator=emulator)
        room = open_incident(slack, emulator, runtime)
        app.worker.stop()  # the worker "crashes"; the web side keeps acking

        response = slack.command("fact Flights resume at 14:00", user_id=MONITOR, channel_id=room.channel_id)
        assert response.status_code == 200
        with transaction(runtime.sessions) as session:
            assert jobs.pending_count(session) == 1
            assert session.scalars(select(Fact)).all() == []

        replacement = Worker(runtime, tables.run_job, threads=1, poll_seconds=0.05).start()
        try:
            wait_until(lambda: _facts(runtime) == ["Flights resume at 14:00"], what="the fact recorded")
        finally:
            replacement.stop()
        assert emulator.errors == []
    finally:
        app.stop()
        runtime.engine.dispose()


def _facts(runtime: Runtime) -> list[str]:
    with transaction(runtime.sessions) as session:
        return [fact.text for fact in session.scalars(select(Fact))]


def test_the_ack_says_so_when_the_command_cannot_be_queued(emulator: SlackEmulator, plan) -> None:  # type: ignore[no-untyped-def]
    runtime = build_runtime(make_settings("postgresql+psycopg://nobody@127.0.0.1:1/none", emulator), plan)
    app = InProcessApp(runtime, worker_threads=1).start()
    try:
        slack = SlackClient(app.url, SIGNING_SECRET, emulator=emulator)
        response = slack.command("fact anything", user_id=LEAD, channel_id="C0ROOM001")
        assert response.status_code == 200
        body = response.json()
        assert body["response_type"] == "ephemeral"
        assert "busy or unreachable" in body["text"] and "Nothing was changed" in body["text"]
    finally:
        app.stop()
        runtime.engine.dispose()


@pytest.mark.parametrize("text", ["open", "open sev2", "open sev2 outage"])
def test_the_open_form_is_shown_from_the_listener_within_the_trigger_window(
    slack: SlackClient, emulator: SlackEmulator, runtime: Runtime, text: str
) -> None:
    slack.command(text, user_id=LEAD)
    wait_until(lambda: emulator.opened_views, what="the open form")
    with transaction(runtime.sessions) as session:
        assert jobs.pending_count(session) == 0
        assert session.scalars(select(Job)).all() == []  # the form path never touches the queue


# ---- the ack path's group commit ---------------------------------------------------------------------


def test_acks_waiting_together_are_committed_in_one_batch(runtime: Runtime) -> None:
    """While the database is held up, forty acks queue behind the writer and go in together; every one
    of them is a committed row when its submit returns."""
    intake = intake_module.JobIntake(runtime.engine)
    holder = hold_job_writes(runtime.engine, 0.4)
    start = threading.Barrier(40)
    failures: list[BaseException] = []

    def ack(n: int) -> None:
        start.wait()
        try:
            intake.submit("test", {"n": n})
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    _all_at_once(ack, [(n,) for n in range(40)])
    holder.join()
    assert failures == []
    with transaction(runtime.sessions) as session:
        stored = sorted(payload["n"] for payload in session.scalars(select(Job.payload)))
    assert stored == list(range(40))
    assert intake.batches <= 3, f"{intake.batches} commits for 40 jobs that waited together"


def test_an_ack_at_a_quiet_moment_writes_its_own_job(runtime: Runtime) -> None:
    """Nobody writing and nobody waiting: the ack's thread writes its job itself, with no hand-off to
    the writer thread; while a write is under way, the next acks wait for the writer's batch."""
    intake = intake_module.JobIntake(runtime.engine)
    for n in range(3):
        intake.submit("test", {"n": n})
    assert (intake.batches, intake.written_directly) == (3, 3)
    holder = hold_job_writes(runtime.engine, 0.3)
    _all_at_once(intake.submit, [("test", {"n": n}) for n in range(3, 23)])
    holder.join()
    # The first of the twenty may write directly (and wait for the lock); the rest go in batches.
    assert intake.written_directly <= 4 and intake.batches <= 3 + 4
    with transaction(runtime.sessions) as session:
        assert sorted(payload["n"] for payload in session.scalars(select(Job.payload))) == list(range(23))


def test_a_batch_is_stored_as_the_model_stores_a_job_and_a_worker_can_claim_it(runtime: Runtime) -> None:
    """On SQLite the writer builds one multi-row INSERT itself: every value must come back through the
    model exactly as if the ORM had written it (JSON text, UTC times), and a worker must claim it. A
    NUL, which PostgreSQL's JSON cannot hold, is stored as U+FFFD on both databases."""
    intake = intake_module.JobIntake(runtime.engine)
    payloads: list[dict[str, Any]] = [
        {"text": "open Ünïcode — “quotes” 💥 '; DROP TABLE jobs; --", "n": 1, "nested": {"list": [1, None, True]}},
        {"text": "=HYPERLINK(\"x\")\n\t\u0000", "n": 2, "nested": {}},
    ]
    expected = [payloads[0], {**payloads[1], "text": "=HYPERLINK(\"x\")\n\t\ufffd"}]
    before = utcnow()
    _all_at_once(intake.submit, [("test", payload) for payload in payloads])
    with transaction(runtime.sessions) as session:
        stored = session.scalars(select(Job).order_by(Job.id)).all()
        assert sorted((job.payload for job in stored), key=lambda payload: payload["n"]) == expected
        for job in stored:
            assert (job.kind, job.status, job.attempts, job.error, job.claimed_by) == ("test", QUEUED, 0, None, None)
            assert job.created_at.tzinfo is not None and before <= job.created_at <= utcnow()
            assert job.available_at == job.created_at
    with transaction(runtime.sessions) as session:
        claimed = jobs.claim_next(session, "worker-1")
    assert claimed is not None and claimed.payload in expected and claimed.attempts == 1


def test_a_job_the_database_refuses_fails_alone_not_the_acks_batched_with_it(runtime: Runtime) -> None:
    """A row PostgreSQL cannot hold (a kind longer than its column) fails the batch's one INSERT: the
    writer then writes each job alone, so only that job is refused. SQLite does not check lengths."""
    intake = intake_module.JobIntake(runtime.engine)
    holder = hold_job_writes(runtime.engine, 0.3)  # so all five wait, and go, in one batch
    kinds = ["test", "test", "x" * 41, "test", "test"]
    outcomes: dict[int, str] = {}

    def ack(n: int) -> None:
        try:
            intake.submit(kinds[n], {"n": n})
            outcomes[n] = "stored"
        except intake_module.JobNotAccepted:
            outcomes[n] = "refused"

    _all_at_once(ack, [(n,) for n in range(5)])
    holder.join()
    postgres = runtime.engine.dialect.name == "postgresql"
    assert outcomes == {0: "stored", 1: "stored", 2: "refused" if postgres else "stored", 3: "stored", 4: "stored"}
    with transaction(runtime.sessions) as session:
        stored = sorted(payload["n"] for payload in session.scalars(select(Job.payload)))
    assert stored == ([0, 1, 3, 4] if postgres else [0, 1, 2, 3, 4])


def test_a_job_the_database_cannot_take_within_the_budget_is_refused_and_not_stored(runtime: Runtime) -> None:
    intake = intake_module.JobIntake(runtime.engine, budget_seconds=0.3)
    holder = hold_job_writes(runtime.engine, 1.5)
    started = time.monotonic()
    with pytest.raises(intake_module.JobNotAccepted):
        intake.submit("test", {"n": 1})
    assert time.monotonic() - started < 1.3, "the refusal came after the budget, not after the lock"
    holder.join()
    with transaction(runtime.sessions) as session:
        assert session.scalars(select(Job)).all() == []
    intake.submit("test", {"n": 2})  # the writer is still there once the database is free
    with transaction(runtime.sessions) as session:
        assert [job.payload for job in session.scalars(select(Job))] == [{"n": 2}]


def test_the_ack_tells_the_truth_about_a_job_the_writer_is_still_writing(runtime: Runtime) -> None:
    """An ack that waited past its budget says "not run" only about a job that will never be written:
    a job whose write had started is waited for (and accepted), and a job the ack gave up on before
    its write started is never written later."""
    intake = intake_module.JobIntake(runtime.engine, budget_seconds=0.3)
    real_insert = intake._insert
    writing = threading.Event()

    def slow_insert(rows: list[dict[str, Any]], deadline: float) -> None:
        writing.set()
        time.sleep(1.6)  # a write that outlives the ack's budget and its one-second grace
        real_insert(rows, deadline)

    intake._insert = slow_insert  # type: ignore[method-assign]
    outcomes: dict[int, str] = {}

    def ack(n: int) -> None:
        try:
            intake.submit("test", {"n": n})
            outcomes[n] = "accepted"
        except intake_module.JobNotAccepted:
            outcomes[n] = "refused"

    intake._ensure_writer()
    with intake._writing:  # someone is writing: both acks hand their job to the writer thread
        first = threading.Thread(target=ack, args=(1,))
        first.start()
        time.sleep(0.05)
    assert writing.wait(5)  # the writer thread is writing job 1 now, slowly
    second = threading.Thread(target=ack, args=(2,))
    second.start()  # queued behind the slow write: its ack gives up before the writer gets to it
    first.join(10)
    second.join(10)
    time.sleep(0.3)  # give the writer the chance it must not take
    with transaction(runtime.sessions) as session:
        stored = sorted(job.payload["n"] for job in session.scalars(select(Job)))
    assert outcomes == {1: "accepted", 2: "refused"}
    assert stored == [1]


def test_the_job_writer_holds_no_connection_once_acks_stop(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer keeps a connection of its own, with its own settings, while acks keep coming, and
    lets go of it once they stop, leaving none of those settings to the rest of the app: on SQLite it
    closes it; on PostgreSQL it resets it and gives it back to the pool."""
    monkeypatch.setattr(intake_module, "IDLE_RELEASE_SECONDS", 0.2)
    intake = intake_module.JobIntake(runtime.engine)
    intake.submit("test", {"n": 1})
    intake.submit("test", {"n": 2})
    held = intake._connection
    assert held is not None and not held.closed
    raw = held.connection.dbapi_connection
    assert raw is not None
    if runtime.engine.dialect.name == "postgresql":
        assert raw.autocommit  # each batch is one atomic INSERT
        assert raw.execute("SHOW lock_timeout").fetchone() == ("750ms",)  # half the 1.5 s budget
        # It lets go of the connection, then resets it and gives it back outside its lock: wait for both.
        wait_until(lambda: intake._connection is None and runtime.engine.pool.checkedout() == 0,  # type: ignore[attr-defined]
                   timeout=5, what="the idle writer to give its connection back to the pool")
        assert not raw.closed and not raw.autocommit  # back in the pool, as the pool gave it
        assert raw.execute("SHOW lock_timeout").fetchone() == ("0",)
        assert raw.execute("SHOW statement_timeout").fetchone() == ("0",)
        raw.rollback()
    else:
        # The writer's own settings, not the pool's 15 s busy timeout, and each batch's one INSERT
        # commits on its own (no BEGIN and COMMIT round the batch).
        assert raw.execute("PRAGMA busy_timeout").fetchone() == (0,)
        assert raw.isolation_level is None and not raw.in_transaction
        wait_until(lambda: intake._connection is None, timeout=5, what="the idle writer to close its connection")
        with pytest.raises(sqlite3.ProgrammingError, match="closed"):
            raw.execute("SELECT 1")
        with runtime.engine.connect() as pooled:  # nothing in the pool carries the writer's settings
            assert pooled.exec_driver_sql("PRAGMA busy_timeout").scalar() == 15_000
    intake.submit("test", {"n": 3})  # the next ack takes a connection again
    with transaction(runtime.sessions) as session:
        assert sorted(payload["n"] for payload in session.scalars(select(Job.payload))) == [1, 2, 3]
