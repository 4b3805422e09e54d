"""The job queue in SQL: enqueue before the ack, claim once, retry, recover jobs whose worker died."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from models import Job, rows_changed, utcnow
from models.db import SQLITE_BUSY_TIMEOUT_MS
from models.jobs import DONE, FAILED, QUEUED, RUNNING

MAX_ATTEMPTS = 3
# A running job whose worker has said nothing for this long is taken to have died with it.
STALE_AFTER = timedelta(minutes=5)
KEEP_DONE = timedelta(days=1)
# How long the ack path may wait for the database before saying the command was not run.
ACK_BUDGET_SECONDS = 1.5


@dataclass(frozen=True)
class ClaimedJob:
    id: int
    kind: str
    payload: dict[str, Any]
    attempts: int


def enqueue(session: Session, kind: str, payload: dict[str, Any]) -> int:
    """Add a job; it is safe once the caller's transaction commits. (A Core insert: it is on the ack path.)"""
    return int(session.execute(insert(Job).values(kind=kind, payload=payload).returning(Job.id)).scalar_one())


def enqueue_within(sessions: sessionmaker[Session], kind: str, payload: dict[str, Any],
                   budget_seconds: float = ACK_BUDGET_SECONDS) -> int:
    """Commit a job, waiting at most `budget_seconds` for the database's locks (it runs before a
    Slack ack, which must go out within 3 seconds); raises SQLAlchemyError when it cannot."""
    budget_ms = int(budget_seconds * 1000)
    with sessions() as session, session.begin():
        connection = session.connection()
        dialect = connection.dialect.name
        if dialect == "sqlite":
            connection.exec_driver_sql(f"PRAGMA busy_timeout={budget_ms}")
        elif dialect == "postgresql":
            connection.exec_driver_sql(f"SET LOCAL lock_timeout = {budget_ms}")
            connection.exec_driver_sql(f"SET LOCAL statement_timeout = {budget_ms}")
        try:
            return enqueue(session, kind, payload)
        finally:
            if dialect == "sqlite":
                connection.exec_driver_sql(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")


def claim_next(session: Session, worker: str, now: datetime | None = None) -> ClaimedJob | None:
    """Take the oldest available job for `worker`, or None. Exactly one worker wins each job."""
    now = now or utcnow()
    query = (
        select(Job.id)
        .where(Job.status == QUEUED, Job.available_at <= now)
        .order_by(Job.id)
        .limit(8)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    for job_id in session.scalars(query).all():
        # Compare-and-set on the status: on SQLite two workers may read the same candidate.
        won = rows_changed(
            session,
            update(Job)
            .where(Job.id == job_id, Job.status == QUEUED)
            .values(status=RUNNING, claimed_by=worker, claimed_at=now, attempts=Job.attempts + 1),
        )
        if won:
            job = session.get(Job, job_id)
            assert job is not None
            session.refresh(job)
            return ClaimedJob(job.id, job.kind, dict(job.payload), job.attempts)
    return None


def finish(session: Session, job_id: int) -> None:
    """The job is done."""
    session.execute(update(Job).where(Job.id == job_id).values(status=DONE, finished_at=utcnow(), error=None))


def fail(session: Session, job_id: int, error: str, attempts: int) -> bool:
    """The job raised: retry it later (True) until MAX_ATTEMPTS, then mark it failed (False)."""
    now = utcnow()
    if attempts < MAX_ATTEMPTS:
        session.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(status=QUEUED, error=error, available_at=now + timedelta(seconds=10 * attempts))
        )
        return True
    session.execute(update(Job).where(Job.id == job_id).values(status=FAILED, error=error, finished_at=now))
    return False


def requeue_stale(session: Session, now: datetime | None = None) -> int:
    """Put back jobs whose worker died mid-run (kill -9, a lost dyno); returns how many."""
    now = now or utcnow()
    return rows_changed(
        session,
        update(Job)
        .where(Job.status == RUNNING, Job.claimed_at < now - STALE_AFTER)
        .values(status=QUEUED, claimed_by=None, available_at=now),
    )


def purge_finished(session: Session, now: datetime | None = None) -> int:
    """Forget jobs done more than a day ago, so the table stays small."""
    now = now or utcnow()
    return rows_changed(session, delete(Job).where(Job.status == DONE, Job.finished_at < now - KEEP_DONE))


def pending_count(session: Session) -> int:
    """Jobs queued or running (for tests, health and benchmarks)."""
    return len(session.scalars(select(Job.id).where(Job.status.in_([QUEUED, RUNNING]))).all())
