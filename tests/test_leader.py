"""Scheduler leadership: one leader per database, a standby that takes over when the leader goes away."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from bot.background.leader import APPLICATION_NAME_PREFIX, LeaderLock, run_while_leader
from tests.conftest import BACKENDS

TAKEOVER_SECONDS = 5.0
FAST_POLL = 0.05


@pytest.fixture(params=BACKENDS)
def lock_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database to lead: a SQLite file (flock) or the PostgreSQL test database (advisory lock)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'warroom.db'}"
    return str(request.getfixturevalue("postgres_database"))


@pytest.fixture
def key() -> int:
    # A key per test, so nothing else on the same PostgreSQL database can collide with it.
    return random.randint(1, 2**62)


@pytest.fixture
def locks(lock_url: str, key: int) -> Iterator[Callable[[], LeaderLock]]:
    made: list[LeaderLock] = []

    def make() -> LeaderLock:
        lock = LeaderLock(lock_url, key=key)
        made.append(lock)
        return lock

    yield make
    for lock in made:
        lock.release()


def acquire_in_background(lock: LeaderLock) -> tuple[threading.Thread, threading.Event, list[bool]]:
    """A standby thread waiting for `lock`; the list gets acquire()'s result."""
    stop, result = threading.Event(), []
    thread = threading.Thread(target=lambda: result.append(lock.acquire(stop, poll_seconds=FAST_POLL)),
                              daemon=True)
    thread.start()
    return thread, stop, result


def test_only_one_lock_holds(locks: Callable[[], LeaderLock]) -> None:
    first, second = locks(), locks()
    assert first.try_acquire()
    assert not second.try_acquire()
    assert first.held()
    assert not second.held()


def test_standby_takes_over_after_release(locks: Callable[[], LeaderLock]) -> None:
    leader, standby = locks(), locks()
    assert leader.try_acquire()
    thread, stop, result = acquire_in_background(standby)
    time.sleep(FAST_POLL * 4)
    assert result == [], "the standby must wait while the leader holds the lock"

    leader.release()
    thread.join(TAKEOVER_SECONDS)
    stop.set()
    assert result == [True]
    assert standby.held()
    assert not leader.try_acquire()


def test_acquire_returns_false_when_stopped(locks: Callable[[], LeaderLock]) -> None:
    leader, standby = locks(), locks()
    assert leader.try_acquire()
    thread, stop, result = acquire_in_background(standby)
    stop.set()
    thread.join(TAKEOVER_SECONDS)
    assert result == [False]
    assert not standby.is_locked


def test_lock_survives_releasing_twice(locks: Callable[[], LeaderLock]) -> None:
    lock = locks()
    assert lock.try_acquire()
    lock.release()
    lock.release()
    assert lock.try_acquire(), "a released lock can be taken again"


@pytest.mark.skipif("postgresql" not in BACKENDS, reason="needs TEST_DATABASE_URL")
def test_postgres_killed_connection_loses_leadership_and_standby_takes_over(postgres_database: str,
                                                                            key: int) -> None:
    leader, standby = LeaderLock(postgres_database, key=key), LeaderLock(postgres_database, key=key)
    try:
        assert leader.try_acquire()
        thread, stop, result = acquire_in_background(standby)
        admin = create_engine(postgres_database, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            # The leader's backend, found the way an operator would: by its application_name.
            killed = connection.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                     "WHERE application_name = :name AND pid IN "
                     "(SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
                     " AND ((classid::bigint << 32) | objid::bigint) = :key)"),
                {"name": f"{APPLICATION_NAME_PREFIX}:{os.getpid()}", "key": key},
            ).all()
        admin.dispose()
        assert len(killed) == 1
        thread.join(TAKEOVER_SECONDS)
        stop.set()
        assert result == [True], "the standby takes the lock once the leader's backend is gone"
        assert not leader.held(), "a leader whose connection dropped knows it no longer leads"
        assert standby.held()
    finally:
        leader.release()
        standby.release()


def test_sqlite_lock_file_sits_beside_the_database(tmp_path: Path) -> None:
    lock = LeaderLock(f"sqlite:///{tmp_path / 'warroom.db'}")
    with lock:
        assert lock.try_acquire()
        assert lock.lock_path == tmp_path / "warroom.db.scheduler.lock"
        assert lock.lock_path.read_text().strip() == str(os.getpid())


def test_sqlite_deleted_lock_file_means_leadership_is_lost(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'warroom.db'}"
    leader, newcomer = LeaderLock(url), LeaderLock(url)
    try:
        assert leader.try_acquire()
        assert leader.lock_path is not None
        leader.lock_path.unlink()
        assert newcomer.try_acquire()
        assert not leader.held(), "two processes must never both believe they lead"
    finally:
        leader.release()
        newcomer.release()


def test_in_memory_sqlite_locks_per_process() -> None:
    first, second = LeaderLock("sqlite://", key=7), LeaderLock("sqlite://", key=7)
    try:
        assert first.try_acquire()
        assert not second.try_acquire()
        first.release()
        assert second.try_acquire()
    finally:
        first.release()
        second.release()


def test_other_databases_are_refused() -> None:
    with pytest.raises(ValueError, match="PostgreSQL or SQLite"):
        LeaderLock("mysql://user@localhost/warroom")


def test_repr_hides_the_database_url() -> None:
    lock = LeaderLock("postgresql+psycopg://warroom:s3cret@db.example/warroom")
    assert "s3cret" not in repr(lock)


_HOLDER = """
import sys, time
from bot.background.leader import LeaderLock
lock = LeaderLock(sys.argv[1], key=int(sys.argv[2]))
assert lock.try_acquire()
print("held", flush=True)
time.sleep(60)
"""


def test_kill_9_of_the_holder_process_frees_the_lock(locks: Callable[[], LeaderLock], lock_url: str,
                                                     key: int) -> None:
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, lock_url, str(key)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        standby = locks()
        assert not standby.try_acquire()
        thread, stop, result = acquire_in_background(standby)
        holder.send_signal(signal.SIGKILL)
        thread.join(TAKEOVER_SECONDS)
        stop.set()
        assert result == [True]
    finally:
        holder.kill()
        holder.wait()


def test_run_while_leader_runs_jobs_in_exactly_one_place(locks: Callable[[], LeaderLock]) -> None:
    running: list[str] = []
    events: list[str] = []
    guard = threading.Lock()

    def starter(name: str) -> Callable[[], Callable[[], None]]:
        def start() -> Callable[[], None]:
            with guard:
                running.append(name)
                events.append(f"start {name}")

            def stop_jobs() -> None:
                with guard:
                    running.remove(name)
                    events.append(f"stop {name}")

            return stop_jobs

        return start

    stops = {"a": threading.Event(), "b": threading.Event()}
    threads = {
        name: threading.Thread(
            target=run_while_leader,
            args=(locks(), stops[name], starter(name)),
            kwargs={"poll_seconds": FAST_POLL, "check_seconds": FAST_POLL},
            daemon=True,
        )
        for name in ("a", "b")
    }
    try:
        threads["a"].start()
        deadline = time.monotonic() + TAKEOVER_SECONDS
        while running != ["a"] and time.monotonic() < deadline:
            time.sleep(FAST_POLL / 2)
        threads["b"].start()
        time.sleep(FAST_POLL * 6)
        assert running == ["a"], "the second scheduler stands by"

        stops["a"].set()
        threads["a"].join(TAKEOVER_SECONDS)
        deadline = time.monotonic() + TAKEOVER_SECONDS
        while running != ["b"] and time.monotonic() < deadline:
            time.sleep(FAST_POLL / 2)
        assert running == ["b"]
        assert events == ["start a", "stop a", "start b"]
    finally:
        for stop in stops.values():
            stop.set()
        for thread in threads.values():
            thread.join(TAKEOVER_SECONDS)
    assert running == []
