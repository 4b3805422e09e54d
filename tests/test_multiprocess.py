"""Real processes: two `warroom scheduler`s on one database behave as one, and a `kill -9` hands over."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bot.background.leader import APPLICATION_NAME_PREFIX, SCHEDULER_LOCK_KEY
from bot.demo.slack_emulator import SlackEmulator
from tests.conftest import BOT_TOKEN
from tests.fixtures_lifecycle import wait_until
from tests.fixtures_reliability import fresh_database_fixture  # noqa: F401 - provides fresh_database

pytestmark = pytest.mark.slow

WARROOM = Path(sys.executable).with_name("warroom")
START_SECONDS = 20.0
TAKEOVER_SECONDS = 15.0
LEADING = re.compile(r"scheduler leader \(pid (\d+)\): starting jobs")
STANDING_BY = "scheduler standby"


@dataclass
class SchedulerProcess:
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def leading(self) -> bool:
        return any(int(match) == self.pid for match in LEADING.findall(self.log()))


@pytest.fixture
def slack_emulator() -> Iterator[SlackEmulator]:
    with SlackEmulator() as emu:
        yield emu


@pytest.fixture
def start_scheduler(fresh_database: str, slack_emulator: SlackEmulator,
                    tmp_path: Path) -> Iterator[Callable[[], SchedulerProcess]]:
    started: list[SchedulerProcess] = []
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("SLACK_", "WARROOM_", "DATABASE_URL", "OPENAI_"))}
    env.update(SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_API_URL=slack_emulator.api_url,
               DATABASE_URL=fresh_database, WARROOM_LOG_LEVEL="INFO", PYTHONUNBUFFERED="1")

    def start() -> SchedulerProcess:
        log_path = tmp_path / f"scheduler-{len(started)}.log"
        with open(log_path, "wb") as log_file:
            # cwd without a plan.yml: WARROOM_PLAN unset means the bundled example plan.
            process = subprocess.Popen([str(WARROOM), "scheduler"], cwd=tmp_path, env=env,
                                       stdout=log_file, stderr=subprocess.STDOUT)
        started.append(SchedulerProcess(process, log_path))
        return started[-1]

    yield start
    for scheduler in started:
        if scheduler.process.poll() is None:
            scheduler.process.send_signal(signal.SIGTERM)
    for scheduler in started:
        try:
            scheduler.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            scheduler.process.kill()
            scheduler.process.wait()


def lock_holder_pid(url: str) -> int | None:
    """Which OS process leads, according to the database itself (not the logs)."""
    if url.startswith("sqlite"):
        lock_file = Path(make_url(url).database or "").with_name("warroom.db.scheduler.lock")
        try:
            import fcntl

            with open(lock_file, "rb") as handle:
                try:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
                except BlockingIOError:
                    return int(handle.read().strip() or 0) or None  # locked: the pid it names leads
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
                return None  # nobody holds it
        except FileNotFoundError:
            return None
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            names = connection.execute(
                text("SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                     "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
                     "AND ((l.classid::bigint << 32) | l.objid::bigint) = :key"),
                {"key": SCHEDULER_LOCK_KEY},
            ).scalars().all()
    finally:
        engine.dispose()
    assert len(names) <= 1, f"more than one backend holds the scheduler lock: {names}"
    if not names:
        return None
    prefix = APPLICATION_NAME_PREFIX + ":"
    assert names[0].startswith(prefix)
    return int(names[0][len(prefix):])


def test_two_schedulers_one_leader_and_kill_9_hands_over(
    start_scheduler: Callable[[], SchedulerProcess], fresh_database: str
) -> None:
    first = start_scheduler()
    wait_until(first.leading, START_SECONDS, f"the first scheduler to lead\n{first.log()}")
    second = start_scheduler()
    wait_until(lambda: STANDING_BY in second.log(), START_SECONDS,
               f"the second scheduler to stand by\n{second.log()}")

    assert not second.leading(), second.log()
    assert lock_holder_pid(fresh_database) == first.pid
    assert first.process.poll() is None and second.process.poll() is None

    first.process.send_signal(signal.SIGKILL)
    first.process.wait(timeout=5)
    wait_until(second.leading, TAKEOVER_SECONDS, f"the standby to take over\n{second.log()}")
    wait_until(lambda: lock_holder_pid(fresh_database) == second.pid, TAKEOVER_SECONDS,
               "the database to show the standby holding the lock")
    assert "Traceback" not in second.log(), second.log()
