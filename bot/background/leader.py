"""Scheduler leadership: however many processes run a scheduler, exactly one runs its jobs.

Several `warroom serve --no-scheduler` processes and one `warroom scheduler` share one database and
behave as one bot. To make a second scheduler (a standby, or a `serve` with its scheduler left on)
harmless, a scheduler only starts its jobs while it holds a `LeaderLock`:

* PostgreSQL: a *session-level* advisory lock, `pg_try_advisory_lock(SCHEDULER_LOCK_KEY)`, taken on a
  connection of its own (never one from the request pool, which would hand the lock to whatever request
  borrows that connection next, or drop it when the pool recycles). A session-level lock belongs to the
  server backend of that connection and dies with it: `release()`, a clean exit, a `kill -9` (the kernel
  closes the socket, the backend sees EOF and exits) or a lost network (TCP keepalives end the backend)
  all free it, and a standby polling `pg_try_advisory_lock` takes over within one poll. A transaction-level
  lock would not do: it would need a transaction held open for the whole leadership.
* SQLite (the single-machine default): an exclusive `fcntl.flock` on `<database file>.scheduler.lock`.
  The kernel drops a flock when its file descriptor closes, including when the process is killed, so
  takeover works the same way. An in-memory database is private to its process, so there the lock is
  per process.

If the leader's connection drops, `held()` turns False and `run_while_leader` stops the jobs and goes
back to standby. Between the server freeing the lock and the old leader's next `held()` check (at most
`check_seconds`) both could run a job; the jobs are idempotent per window (digests and polls record what
they did), so the overlap costs at most a duplicate attempt that the tables absorb.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING

from sqlalchemy import Connection, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

if TYPE_CHECKING:
    from bot.background.runtime import Runtime
    from bot.flows.port import SlackPort

log = logging.getLogger(__name__)

# "WARROOM" in ASCII plus 1: a fixed bigint no other application is likely to use as an advisory key.
SCHEDULER_LOCK_KEY = 0x57_41_52_52_4F_4F_4D_01
POLL_SECONDS = 2.0
CHECK_SECONDS = 2.0
APPLICATION_NAME_PREFIX = "warroom-scheduler"
# libpq settings for the leader connection: notice a dead server (or network) within seconds, so a
# leader whose connection is gone stops its jobs instead of hanging on a check.
_PG_CONNECT_ARGS = {
    "connect_timeout": 5,
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
    "tcp_user_timeout": 10_000,
}
_MEMORY_LOCKS: dict[str, threading.Lock] = {}
_MEMORY_LOCKS_GUARD = threading.Lock()


class LeaderLock:
    """One process's claim to lead the scheduler: acquire (waiting as a standby), check, release."""

    def __init__(self, database_url: str, *, key: int = SCHEDULER_LOCK_KEY, name: str = "scheduler") -> None:
        self.database_url = database_url
        self.key = key
        self.name = name
        url = make_url(database_url)
        self.backend = url.get_backend_name()
        if self.backend not in ("postgresql", "sqlite"):
            raise ValueError(
                f"DATABASE_URL: scheduler leadership needs PostgreSQL or SQLite, not {self.backend}"
            )
        self._connection: Connection | None = None
        self._file: IO[bytes] | None = None
        self._memory_lock: threading.Lock | None = None
        self.lock_path: Path | None = None
        if self.backend == "sqlite":
            database = url.database or ""
            if database and database != ":memory:" and not database.startswith("file::memory:"):
                self.lock_path = Path(database).resolve().with_name(Path(database).name + f".{name}.lock")

    def __repr__(self) -> str:
        # The URL may carry a password; say only which backend and whether we lead.
        return f"LeaderLock(backend={self.backend!r}, held={self.is_locked})"

    @property
    def is_locked(self) -> bool:
        """Whether this object believes it holds the lock (without checking the connection)."""
        return self._connection is not None or self._file is not None or self._memory_lock is not None

    def try_acquire(self) -> bool:
        """One attempt to take the lock; True when this process now leads."""
        if self.is_locked:
            return self.held()
        if self.backend == "postgresql":
            return self._try_postgresql()
        if self.lock_path is not None:
            return self._try_file()
        return self._try_memory()

    def acquire(self, stop: threading.Event, poll_seconds: float = POLL_SECONDS) -> bool:
        """Wait as a standby until the lock is ours (True) or `stop` is set (False)."""
        waiting_logged = False
        while not stop.is_set():
            try:
                if self.try_acquire():
                    return True
            except SQLAlchemyError as exc:
                # The database may be down for a moment; keep standing by rather than crash.
                log.warning("%s leadership: cannot reach the database (%s); retrying", self.name,
                            type(exc).__name__)
            if not waiting_logged:
                log.info("%s standby: another process holds the lock; waiting to take over", self.name)
                waiting_logged = True
            stop.wait(poll_seconds)
        return False

    def held(self) -> bool:
        """Whether this process still leads: the lock's connection (or file) is alive and still ours."""
        if self._connection is not None:
            try:
                # A session lock lives as long as its backend; a round trip proves the backend is alive.
                still_ours = self._connection.execute(
                    text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                         "AND pid = pg_backend_pid() AND objsubid = 1 "
                         "AND ((classid::bigint << 32) | objid::bigint) = :key"),
                    {"key": self.key},
                ).scalar_one()
            except SQLAlchemyError:
                log.warning("%s leadership lost: the lock's database connection dropped", self.name)
                self._drop_connection()
                return False
            if not still_ours:
                log.warning("%s leadership lost: the advisory lock is no longer held", self.name)
                self._drop_connection()
                return False
            return True
        if self._file is not None:
            assert self.lock_path is not None
            try:
                # Someone deleting the lock file would let a newcomer lock a fresh file beside ours.
                same_file = os.fstat(self._file.fileno()).st_ino == os.stat(self.lock_path).st_ino
            except OSError:
                same_file = False
            if not same_file:
                log.warning("%s leadership lost: %s was removed or replaced", self.name, self.lock_path)
                self.release()
                return False
            return True
        return self._memory_lock is not None

    def release(self) -> None:
        """Give up leadership (a standby elsewhere takes over on its next poll)."""
        if self._connection is not None:
            with contextlib.suppress(SQLAlchemyError):  # a dropped connection took the lock with it
                self._connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self.key})
            self._drop_connection()
        if self._file is not None:
            try:
                fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            finally:
                self._file.close()
                self._file = None
        if self._memory_lock is not None:
            self._memory_lock.release()
            self._memory_lock = None

    def __enter__(self) -> LeaderLock:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    # ---- backends --------------------------------------------------------------------------------

    def _try_postgresql(self) -> bool:
        # NullPool: this connection is ours alone and is really closed when we drop it.
        engine = create_engine(
            self.database_url,
            poolclass=NullPool,
            isolation_level="AUTOCOMMIT",  # no transaction left open for the whole leadership
            connect_args={**_PG_CONNECT_ARGS, "application_name": f"{APPLICATION_NAME_PREFIX}:{os.getpid()}"},
        )
        connection = engine.connect()
        try:
            query = text("SELECT pg_try_advisory_lock(:key)")
            got = bool(connection.execute(query, {"key": self.key}).scalar_one())
        except BaseException:
            connection.close()
            engine.dispose()
            raise
        if not got:
            connection.close()
            engine.dispose()
            return False
        self._connection = connection
        return True

    def _drop_connection(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        engine = connection.engine
        with contextlib.suppress(SQLAlchemyError):
            connection.close()
        engine.dispose()

    def _try_file(self) -> bool:
        assert self.lock_path is not None
        handle = open(self.lock_path, "a+b")  # noqa: SIM115 - held open for the whole leadership
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        except BaseException:
            handle.close()
            raise
        # Who leads, for people reading the file; the lock itself is the flock, not the content.
        handle.truncate(0)
        handle.write(f"{os.getpid()}\n".encode())
        handle.flush()
        self._file = handle
        return True

    def _try_memory(self) -> bool:
        with _MEMORY_LOCKS_GUARD:
            lock = _MEMORY_LOCKS.setdefault(f"{self.database_url}#{self.key}", threading.Lock())
        if not lock.acquire(blocking=False):
            return False
        self._memory_lock = lock
        return True


def run_while_leader(
    lock: LeaderLock,
    stop: threading.Event,
    start: Callable[[], Callable[[], None]],
    *,
    poll_seconds: float = POLL_SECONDS,
    check_seconds: float = CHECK_SECONDS,
) -> None:
    """Until `stop` is set: stand by for the lock, `start()` the jobs (it returns their stopper) once it
    is ours, check it every `check_seconds`, and stop the jobs and stand by again if it is lost."""
    try:
        while not stop.is_set():
            if not lock.acquire(stop, poll_seconds=poll_seconds):
                return
            log.info("%s leader (pid %d): starting jobs", lock.name, os.getpid())
            stop_jobs = start()
            try:
                while not stop.wait(check_seconds):
                    if not lock.held():
                        log.warning("%s leadership lost: stopping jobs and standing by", lock.name)
                        break
            finally:
                stop_jobs()
                log.info("%s leader (pid %d): jobs stopped", lock.name, os.getpid())
    finally:
        lock.release()


def lead_scheduler(runtime: Runtime, port: SlackPort, stop: threading.Event) -> None:
    """Run `runtime`'s scheduler jobs only while this process holds the scheduler lock; blocks until `stop`.

    A fresh `Scheduler` is built for every term of leadership, since its jobs are re-derived from the
    tables anyway; `runtime.scheduler` is None while standing by.
    """
    from bot.background.scheduler import Scheduler

    def start() -> Callable[[], None]:
        scheduler = Scheduler(runtime, port)
        scheduler.start()
        runtime.scheduler = scheduler

        def stop_jobs() -> None:
            runtime.scheduler = None
            scheduler.shutdown()

        return stop_jobs

    run_while_leader(LeaderLock(runtime.settings.database_url), stop, start)


def start_leader_thread(runtime: Runtime, port: SlackPort) -> tuple[threading.Thread, threading.Event]:
    """`lead_scheduler` on a daemon thread (for `warroom serve` with its scheduler on); set the event to stop
    (the thread then stops the jobs and releases the lock)."""
    stop = threading.Event()
    thread = threading.Thread(target=lead_scheduler, args=(runtime, port, stop), name="scheduler-leader",
                              daemon=True)
    thread.start()
    return thread, stop
