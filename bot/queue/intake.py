"""The ack path's way into the job queue: a job is committed before Slack is told it was accepted."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, insert
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from bot.infra.clock import real_now
from models import Job
from models.jobs import QUEUED

log = logging.getLogger(__name__)

# How long the ack path may wait for the database before saying the command was not run.
ACK_BUDGET_SECONDS = 1.5
# How often the job writer tries SQLite's write lock again while the worker holds it. The worker's
# write transactions take about a millisecond; bench/ack.py at 400 requests a second (SQLite, worker
# on) gave p99 30 ms polling every 2 ms and 15-21 ms every 0.5 ms, for 3% more of a core.
LOCK_POLL_SECONDS = 0.0005
# The job writer gives up its own connection after this long without work.
IDLE_RELEASE_SECONDS = 2.0


class JobNotAccepted(Exception):
    """The database could not take a job within the ack budget: the ack must say it was not run."""


def _held_lock() -> threading.Lock:
    lock = threading.Lock()
    lock.acquire()
    return lock


@dataclass
class _Submitted:
    kind: str
    payload: dict[str, Any]
    deadline: float
    # Held until the writer has answered; the waiting web thread blocks acquiring it. A bare lock, not
    # an Event: releasing it wakes the waiter once, where Event.set also makes it fight for the
    # Event's own lock before it can return.
    done: threading.Lock = field(default_factory=_held_lock)
    error: BaseException | None = None
    # Taken by whoever settles the job's fate first: the writer when it starts writing it, or the
    # waiting ack when it gives up. So a job the ack said was not run is never written after all, and
    # an ack never says "not run" about a job being written at that moment.
    settled: threading.Lock = field(default_factory=threading.Lock)


# The job columns the writer fills in itself, rather than leaving them to the model's defaults, so a
# SQLite batch can be one statement (`_sqlite_insert`).
_COLUMNS = ("kind", "payload", "status", "attempts", "created_at", "available_at")


class JobIntake:
    """The ack path's way into the queue: group commit.

    Each web thread hands its job to one writer thread and waits; the writer commits everything that
    arrived meanwhile in one INSERT and then releases the waiters. Under load that turns hundreds of
    competing single-row transactions per second, each queueing for SQLite's one write lock or
    PostgreSQL's WAL flush, into a few dozen batches, so the ack no longer waits behind other acks.
    A job is acknowledged only after its batch commits.

    The writer shares the interpreter lock with the web threads, and every call into the database
    driver gives that lock up; getting it back means waiting for a web thread to let go, up to the
    interpreter's switch interval (5 ms), and under load that wait, not SQL, was most of a batch's
    time. So a batch makes as few driver calls as it can: one INSERT in autocommit, no BEGIN and
    COMMIT (`_insert`), and the hand-offs are a C queue and bare locks, not Conditions. At a quiet
    moment (nobody writing, nobody waiting) an ack writes its own job, with no hand-off at all.
    """

    # 6 parameters a row stays under the 999 bound parameters of SQLite builds older than 3.32.
    MAX_BATCH = 150

    def __init__(self, engine: Engine, budget_seconds: float = ACK_BUDGET_SECONDS,
                 on_accepted: Callable[[], None] | None = None) -> None:
        self.engine = engine
        self.budget_seconds = budget_seconds
        self.on_accepted = on_accepted  # wakes this process's worker threads
        self._inbox: queue.SimpleQueue[_Submitted] = queue.SimpleQueue()
        self._starting = threading.Lock()
        self._writer: threading.Thread | None = None
        # Whoever writes holds this: the writer thread for a batch, or an ack writing its own job.
        self._writing = threading.Lock()
        self._connection: Connection | None = None  # the writer's own, while acks keep coming
        self._last_write = 0.0
        self._sqlite_statements: dict[int, str] = {}  # the multi-row INSERT for each batch size
        self._sqlite_processors: list[Callable[[Any], Any] | None] | None = None
        self.batches = 0  # committed batches, for tests and benchmarks
        self.written_directly = 0  # of which written by the ack's own thread

    def accept(self, kind: str, payload: dict[str, Any]) -> bool:
        """The ack path's call: commit the job (waiting at most the budget) and wake the worker; False
        when the database could not take it, so the ack must say it was not accepted."""
        try:
            self.submit(kind, payload)
        except JobNotAccepted as exc:
            log.warning("could not queue a %s job: %s", kind, exc)
            return False
        if self.on_accepted is not None:
            self.on_accepted()
        return True

    def submit(self, kind: str, payload: dict[str, Any]) -> None:
        """Return once the job is committed; raise JobNotAccepted when the database could not take it
        within the budget (then nothing was stored)."""
        job = _Submitted(kind, _storable(payload), time.monotonic() + self.budget_seconds)
        self._ensure_writer()
        if self._inbox.empty() and self._writing.acquire(blocking=False):
            # Nobody is writing and nobody is waiting: write it from this thread, with no hand-off
            # to the writer and back (two thread wake-ups, most of an ack's cost at a quiet moment).
            try:
                job.settled.acquire()
                self._commit([job])
                if job.error is None:
                    self.written_directly += 1
            except Exception:  # job.error holds it, and the ack is refused below
                log.exception("could not write a queued job")
            finally:
                self._writing.release()
        else:
            self._inbox.put(job)
            # The writer answers within the budget (the database's own timeouts bound each batch); the
            # extra second only guards against a writer that died, which would otherwise hang the ack.
            if not job.done.acquire(timeout=self.budget_seconds + 1.0):
                if job.settled.acquire(blocking=False):
                    raise JobNotAccepted("the job writer did not answer")  # and it will never write it
                # It is being written right now: wait for the answer, bounded by the database's own
                # timeouts, rather than tell Slack "not run" about a job that may yet be committed.
                job.done.acquire()
        if job.error is not None:
            # The driver's own words ("database is locked"), not SQLAlchemy's text with the job's payload.
            reason = getattr(job.error, "orig", None) or job.error
            raise JobNotAccepted(f"{type(reason).__name__}: {reason}") from job.error

    def _ensure_writer(self) -> None:
        writer = self._writer
        if writer is not None and writer.is_alive():
            return
        with self._starting:
            if self._writer is None or not self._writer.is_alive():
                self._writer = threading.Thread(target=self._write_forever, name="job-intake", daemon=True)
                self._writer.start()

    def _write_forever(self) -> None:
        while True:
            try:
                first = self._inbox.get(timeout=IDLE_RELEASE_SECONDS)
            except queue.Empty:
                # Quiet: do not keep a connection for nothing. Let go of it outside the lock, because
                # that may talk to the database, and an ack must not wait on it.
                connection = None
                with self._writing:
                    if time.monotonic() - self._last_write >= IDLE_RELEASE_SECONDS:
                        connection, self._connection = self._connection, None
                if connection is not None:
                    self._release(connection)
                continue
            batch = [first]
            with suppress(queue.Empty):
                while len(batch) < self.MAX_BATCH:
                    batch.append(self._inbox.get_nowait())
            # A job whose ack already gave up (`settled` taken) is dropped unwritten; nobody waits for it.
            batch = [job for job in batch if job.settled.acquire(blocking=False)]
            with self._writing:
                self._commit(batch)

    def _commit(self, batch: list[_Submitted]) -> None:
        now = time.monotonic()
        late = [job for job in batch if job.deadline <= now]
        live = [job for job in batch if job.deadline > now]
        for job in late:
            job.error = TimeoutError("the ack budget ran out before the job could be written")
            job.done.release()
        if not live:
            return
        deadline = min(job.deadline for job in live)
        created = real_now()
        rows = [{"kind": job.kind, "payload": job.payload, "status": QUEUED, "attempts": 0,
                 "created_at": created, "available_at": created} for job in live]
        try:
            self._insert(rows, deadline)
            self.batches += 1
            self._last_write = time.monotonic()
        except SQLAlchemyError as exc:
            if len(live) > 1 and not isinstance(exc, OperationalError):
                # The database refused a row, not the batch (a value it cannot hold): the statement
                # fails for every row in it, so write each job alone and refuse only the bad one.
                log.warning("a batch of %d queued jobs was refused (%s); writing them one by one",
                            len(live), type(exc).__name__)
                for job in live:
                    self._commit([job])
                return
            log.warning("could not commit %d queued job(s): %s", len(live), type(exc).__name__)
            for job in live:
                job.error = exc
                job.done.release()
        except BaseException as exc:  # never leave an ack waiting on a writer that died
            for job in live:
                job.error = exc
                job.done.release()
            raise
        else:
            for job in live:
                job.done.release()

    def _insert(self, rows: list[dict[str, Any]], deadline: float) -> None:
        """INSERT the rows as one statement in autocommit, by the deadline, on the writer's own connection.

        One statement is atomic on its own, so there is no BEGIN or COMMIT to send: on PostgreSQL
        that is one round trip instead of five (pre-ping, BEGIN, timeouts, INSERT, COMMIT), and on
        SQLite two driver calls instead of one per row plus the transaction's.

        The writer keeps a connection (checked out of the engine's pool) while acks keep coming, so
        its settings are made once, not per batch, and lets go of it after IDLE_RELEASE_SECONDS
        without work (`_release`), leaving nothing of its settings behind.

        SQLite: no busy handler, because SQLite's backs off to 100 ms sleeps long after the lock is
        free and the writer polls every LOCK_POLL_SECONDS itself; and no WAL auto-checkpoint, which
        runs in whichever connection's commit fills the log and would hold a whole batch of acks for a
        checkpoint's fsync (the worker's and scheduler's commits checkpoint instead).

        PostgreSQL: the batch is SQLAlchemy's insertmanyvalues, and lock and statement timeouts of
        half the ack budget bound it, so a batch the database cannot take is refused at most that
        long after its budget, well inside Slack's 3 seconds, and is not stored."""
        retried = False
        while True:
            connection = self._writer_connection()
            try:
                if connection.dialect.name == "sqlite":
                    connection.exec_driver_sql(*self._sqlite_insert(connection, rows))
                else:
                    connection.execute(insert(Job).returning(Job.id), rows).all()
                return
            except OperationalError as exc:
                if _is_locked(exc) and time.monotonic() + LOCK_POLL_SECONDS < deadline:
                    time.sleep(LOCK_POLL_SECONDS)  # SQLite's write lock is taken: poll again shortly
                    continue
                self._drop_connection()
                if exc.connection_invalidated and not retried and time.monotonic() < deadline:
                    retried = True  # the server restarted since the last batch: one try on a fresh connection
                    continue
                raise
            except SQLAlchemyError:
                self._drop_connection()
                raise

    def _sqlite_insert(self, connection: Connection, rows: list[dict[str, Any]]) -> tuple[str, tuple[Any, ...]]:
        """The rows as one multi-row INSERT and its parameters, as SQLAlchemy would store each value.

        SQLAlchemy sends an executemany to SQLite row by row (insertmanyvalues only with RETURNING,
        which steps the driver once per returned row), so the statement is SQLAlchemy's own
        single-row INSERT with its VALUES group repeated, and each value goes through its column
        type's bind processor (JSON text, UTC datetimes)."""
        dialect = connection.dialect
        statement = self._sqlite_statements.get(len(rows))
        if statement is None:
            single = str(insert(Job).compile(dialect=dialect, column_keys=list(_COLUMNS)))
            head, _, values = single.partition(" VALUES ")
            statement = self._sqlite_statements[len(rows)] = f"{head} VALUES {', '.join([values] * len(rows))}"
        processors = self._sqlite_processors
        if processors is None:
            columns = Job.__table__.columns
            processors = self._sqlite_processors = [
                columns[name].type.dialect_impl(dialect).bind_processor(dialect) for name in _COLUMNS
            ]
        parameters = tuple(
            value if process is None else process(value)
            for row in rows
            for process, value in zip(processors, (row[name] for name in _COLUMNS), strict=True)
        )
        return statement, parameters

    def _writer_connection(self) -> Connection:
        if self._connection is None:
            connection = self.engine.connect()
            try:
                if connection.dialect.name == "sqlite":
                    connection.exec_driver_sql("PRAGMA busy_timeout=0")
                    connection.exec_driver_sql("PRAGMA wal_autocheckpoint=0")
                    connection.commit()
                # Back to the pool's own isolation level when the connection is returned.
                connection.execution_options(isolation_level="AUTOCOMMIT")
                if connection.dialect.name != "sqlite":
                    timeout_ms = max(1, int(self.budget_seconds * 500))
                    connection.exec_driver_sql(f"SET lock_timeout = {timeout_ms}")
                    connection.exec_driver_sql(f"SET statement_timeout = {timeout_ms}")
            except BaseException:
                _discard(connection)
                raise
            self._connection = connection
        return self._connection

    @staticmethod
    def _release(connection: Connection) -> None:
        """Acks have stopped: give up the writer's connection. A PostgreSQL one goes back to the pool
        with its timeouts reset; a SQLite one is closed (its PRAGMAs would outlive a reset)."""
        if connection.dialect.name == "sqlite":
            _discard(connection)
            return
        try:
            connection.exec_driver_sql("RESET lock_timeout")
            connection.exec_driver_sql("RESET statement_timeout")
        except SQLAlchemyError:
            with suppress(SQLAlchemyError):
                connection.invalidate()
        with suppress(SQLAlchemyError):
            connection.close()

    def _drop_connection(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            _discard(connection)


def _discard(connection: Connection) -> None:
    """Close the writer's connection for good: never back in the pool with the writer's settings."""
    with suppress(SQLAlchemyError):
        connection.invalidate()
        connection.close()


def _storable(value: Any) -> Any:
    """`value` with each NUL character replaced by U+FFFD. PostgreSQL's JSON cannot hold \\u0000, and
    one such string in a batch would fail every ack in it; SQLite stores the same, so both agree."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd") if "\x00" in value else value
    if isinstance(value, dict):
        return {_storable(key): _storable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_storable(item) for item in value]
    return value


def _is_locked(exc: OperationalError) -> bool:
    return getattr(exc.orig, "sqlite_errorname", "") in ("SQLITE_BUSY", "SQLITE_LOCKED")
