"""Fixtures for the reliability tests that run real `warroom` processes: a fresh database migrated
with Alembic, as `warroom db upgrade` leaves it (`warroom` refuses a PostgreSQL schema it did not make).

Import `fresh_database_fixture` into a test module; tests then ask for `fresh_database`."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from bot.demo.slack_emulator import SlackEmulator
from bot.infra import database
from bot.infra.settings import normalise_database_url
from tests.conftest import BACKENDS, POSTGRES_URL


@pytest.fixture(params=BACKENDS, name="fresh_database")
def fresh_database_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of its own (a SQLite file, or a new database on TEST_DATABASE_URL), migrated to head."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'warroom.db'}"
        database.upgrade(url)
        yield url
        return
    assert POSTGRES_URL
    base = make_url(normalise_database_url(POSTGRES_URL))
    name = f"warroom_rel_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = base.set(database=name).render_as_string(hide_password=False)
    try:
        database.upgrade(url)
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def settle(emulator: SlackEmulator, quiet_seconds: float = 0.3, timeout: float = 20.0) -> None:
    """Wait until the app has stopped calling Slack: its work after the acks (retries included) is done."""
    deadline = time.monotonic() + timeout
    seen = -1
    while time.monotonic() < deadline:
        now = len(emulator.calls) + len(emulator.responses)
        if now == seen:
            return
        seen = now
        time.sleep(quiet_seconds)
    raise AssertionError("the app kept calling Slack")


def hold_job_writes(engine: Engine, seconds: float) -> threading.Thread:
    """Another connection keeps new job rows out for `seconds`, from a thread: SQLite's write lock
    (`BEGIN IMMEDIATE`), or on PostgreSQL a table lock that conflicts with INSERT. Returns once held."""
    locked = threading.Event()

    def hold() -> None:
        with engine.connect() as connection:
            if connection.dialect.name == "sqlite":
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                connection.exec_driver_sql("BEGIN")
                connection.exec_driver_sql("LOCK TABLE jobs IN EXCLUSIVE MODE")
            locked.set()
            time.sleep(seconds)
            connection.exec_driver_sql("ROLLBACK")

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    assert locked.wait(5), "could not take the lock"
    return thread
