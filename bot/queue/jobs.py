"""The job queue in SQL: claim once, heartbeat, finish or fail as the owner, retry what is transient,
and recover jobs whose worker died. Jobs are written by `bot.queue.intake` before the ack."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, select, update
from sqlalchemy.orm import Session

from bot.infra.clock import real_now
from models import Job, rows_changed
from models.jobs import DONE, FAILED, QUEUED, RUNNING

MAX_ATTEMPTS = 3
# A running worker refreshes its jobs' heartbeat this often; a running job whose heartbeat is older
# than STALE_AFTER has lost its worker and is queued again. Together with the worker's sweep every
# SWEEP_SECONDS, work in flight when every process was killed is taken up again within 90 s.
HEARTBEAT_SECONDS = 10.0
STALE_AFTER = timedelta(seconds=60)
SWEEP_SECONDS = 30.0
# A transient failure is tried again after 5, 10, 20 s...
RETRY_BACKOFF_SECONDS = 5
KEEP_DONE = timedelta(days=1)

_running: ContextVar[int | None] = ContextVar("running_job", default=None)


@contextmanager
def running(job_id: int) -> Iterator[None]:
    """Mark the calling thread as running job `job_id` (the worker does this around each job)."""
    token = _running.set(job_id)
    try:
        yield
    finally:
        _running.reset(token)


def current_job() -> int | None:
    """The id of the queued job this thread is running, or None outside a worker's job."""
    return _running.get()


@dataclass(frozen=True)
class ClaimedJob:
    id: int
    kind: str
    payload: dict[str, Any]
    attempts: int



def claim_next(session: Session, worker: str, now: datetime | None = None) -> ClaimedJob | None:
    """Take the oldest available job for `worker`, or None. Exactly one worker wins each job."""
    now = now or real_now()
    query = (
        select(Job.id)
        .where(Job.status == QUEUED, Job.available_at <= now)
        .order_by(Job.id)
        .limit(8)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    for job_id in session.scalars(query).all():
        # Compare-and-set on the status (on SQLite two workers may read the same candidate), and the
        # job read back in the same statement: on SQLite this transaction holds the one write lock,
        # which the acks wait for, so it makes no round trip after the UPDATE but the commit.
        claimed = session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == QUEUED)
            .values(status=RUNNING, claimed_by=worker, claimed_at=now, heartbeat_at=now,
                    attempts=Job.attempts + 1)
            .returning(Job.id, Job.kind, Job.payload, Job.attempts)
        ).one_or_none()
        if claimed is not None:
            return ClaimedJob(claimed.id, claimed.kind, dict(claimed.payload), claimed.attempts)
    return None


def _owned(job: ClaimedJob, worker: str) -> Any:
    """The job is still this worker's, on this attempt: a job taken over by another worker (its
    heartbeat stopped) is no longer ours to finish or fail."""
    return and_(Job.id == job.id, Job.status == RUNNING, Job.claimed_by == worker, Job.attempts == job.attempts)


def beat(session: Session, worker: str, job_ids: list[int], now: datetime | None = None) -> int:
    """The worker is alive and still running `job_ids`; how many of them are still its own."""
    if not job_ids:
        return 0
    return rows_changed(
        session,
        update(Job)
        .where(Job.id.in_(job_ids), Job.status == RUNNING, Job.claimed_by == worker)
        .values(heartbeat_at=now or real_now()),
    )


def finish(session: Session, job: ClaimedJob, worker: str) -> bool:
    """The job is done; False when it was no longer this worker's (then nothing changes)."""
    return rows_changed(
        session, update(Job).where(_owned(job, worker)).values(status=DONE, finished_at=real_now(), error=None)
    ) == 1


def fail(session: Session, job: ClaimedJob, worker: str, error: str, *, retry: bool) -> str:
    """The job raised. A transient failure (`retry`) is queued again with back-off until MAX_ATTEMPTS;
    otherwise, or after the last attempt, the job is FAILED. Returns the new status, or "" when the
    job was no longer this worker's (nothing changes)."""
    now = real_now()
    if retry and job.attempts < MAX_ATTEMPTS:
        backoff = timedelta(seconds=RETRY_BACKOFF_SECONDS * 2 ** (job.attempts - 1))
        values: dict[str, Any] = {"status": QUEUED, "error": error, "claimed_by": None, "available_at": now + backoff}
    else:
        values = {"status": FAILED, "error": error, "finished_at": now}
    if rows_changed(session, update(Job).where(_owned(job, worker)).values(**values)) != 1:
        return ""
    return str(values["status"])


def hand_back(session: Session, job: ClaimedJob, worker: str) -> bool:
    """A stopping worker gives back a job it did not finish: queued at once for another worker, and
    this attempt not counted (a deploy is not the job's fault)."""
    return rows_changed(
        session,
        update(Job).where(_owned(job, worker)).values(
            status=QUEUED, claimed_by=None, available_at=real_now(), attempts=Job.attempts - 1),
    ) == 1


@dataclass(frozen=True)
class Recovered:
    """What a stale-job sweep did: jobs queued again, and jobs that had used up their attempts."""

    requeued: int
    exhausted: list[ClaimedJob]


def requeue_stale(session: Session, now: datetime | None = None) -> Recovered:
    """Put back jobs whose worker died mid-run (kill -9, a lost dyno): a job is dead when its heartbeat
    stopped, not when it was claimed. Each death counts as an attempt, so a job that kills its worker
    every time ends FAILED after MAX_ATTEMPTS (the caller tells the user)."""
    now = now or real_now()
    last_sign = func.coalesce(Job.heartbeat_at, Job.claimed_at)
    query = select(Job.id, Job.kind, Job.payload, Job.attempts, Job.claimed_by).where(
        Job.status == RUNNING, last_sign < now - STALE_AFTER)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    requeued, exhausted = 0, []
    for row in session.execute(query).all():
        job = ClaimedJob(row.id, row.kind, dict(row.payload), row.attempts)
        owner = row.claimed_by or ""
        if job.attempts >= MAX_ATTEMPTS:
            error = f"its worker stopped while running it, {job.attempts} times"
            if rows_changed(session, update(Job).where(_owned(job, owner)).values(
                    status=FAILED, error=error, finished_at=now)) == 1:
                exhausted.append(job)
        elif rows_changed(session, update(Job).where(_owned(job, owner)).values(
                status=QUEUED, claimed_by=None, available_at=now)) == 1:
            requeued += 1
    return Recovered(requeued, exhausted)


def purge_finished(session: Session, now: datetime | None = None) -> int:
    """Forget jobs done more than a day ago, so the table stays small."""
    now = now or real_now()
    return rows_changed(session, delete(Job).where(Job.status == DONE, Job.finished_at < now - KEEP_DONE))


def pending_count(session: Session) -> int:
    """Jobs queued or running (for tests, health and benchmarks)."""
    return len(session.scalars(select(Job.id).where(Job.status.in_([QUEUED, RUNNING]))).all())
