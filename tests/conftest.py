"""Shared fixtures: a database per test (SQLite, and PostgreSQL when TEST_DATABASE_URL is set),
the Slack Web API emulator, the real app served over HTTP, and a client that signs requests."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bot.background.runtime import Runtime, build_runtime
from bot.crisis.plan import BUNDLED_PLAN, Plan, load_plan
from bot.demo.signed_slack import SlackClient
from bot.demo.slack_emulator import SlackEmulator
from bot.infra.clock import ManualClock, running_on
from bot.infra.settings import Settings, normalise_database_url
from bot.server import InProcessApp
from models import Base

SIGNING_SECRET = "test-signing-secret"
BOT_TOKEN = "xoxb-test-token"
INGEST_TOKEN = "test-ingest-token"
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

# People of the test workspace, and who the test plan puts in which role.
LEAD, APPROVER, DRAFTER, MONITOR, LIAISON, BYSTANDER = (
    "ULEAD01", "UAPPROVE1", "UDRAFT01", "UMONITOR1", "ULIAISON1", "UBYSTAND1",
)
MONITOR_GROUP = "SMONITORS"
PEOPLE = {
    LEAD: "Lena Lead", APPROVER: "Abe Approver", DRAFTER: "Dee Drafter",
    MONITOR: "Mo Monitor", LIAISON: "Lia Liaison", BYSTANDER: "Bea Bystander",
}

POSTGRES_URL = os.environ.get("TEST_DATABASE_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if POSTGRES_URL else [])


def _postgres_test_database() -> str:
    """A database of our own on the TEST_DATABASE_URL server, with the schema created once."""
    assert POSTGRES_URL
    base = make_url(normalise_database_url(POSTGRES_URL))
    name = f"warroom_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = base.set(database=name).render_as_string(hide_password=False)
    engine = create_engine(url)
    Base.metadata.create_all(engine)
    engine.dispose()
    return url


def _drop_postgres_database(url: str) -> None:
    parsed = make_url(url)
    admin = create_engine(parsed.set(database=make_url(normalise_database_url(POSTGRES_URL or "")).database),
                          isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str | None]:
    if not POSTGRES_URL:
        yield None
        return
    url = _postgres_test_database()
    yield url
    _drop_postgres_database(url)


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database with the schema: a SQLite file, or the PostgreSQL test database truncated."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'warroom.db'}"
        engine = create_engine(url)
        Base.metadata.create_all(engine)
        engine.dispose()
        yield url
        return
    url = request.getfixturevalue("postgres_database")
    engine = create_engine(url)
    with engine.begin() as connection:
        tables = ", ".join(f'"{table.name}"' for table in Base.metadata.sorted_tables)
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()
    yield url


@pytest.fixture
def emulator() -> Iterator[SlackEmulator]:
    """The Slack Web API emulator with the test workspace's people and user group."""
    with SlackEmulator() as emu:
        for user_id, real_name in PEOPLE.items():
            emu.add_user(user_id, real_name.split()[0].lower(), real_name=real_name)
        emu.add_usergroup(MONITOR_GROUP, "monitors", [MONITOR])
        yield emu


def make_test_plan(**overrides: Any) -> Plan:
    """The bundled example plan with the test workspace's people in roles and no alert channel."""
    plan = load_plan(BUNDLED_PLAN)
    roles = dict(plan.roles)
    roles["approver"] = roles["approver"].model_copy(update={"members": [APPROVER]})
    roles["drafter"] = roles["drafter"].model_copy(update={"members": [DRAFTER]})
    roles["monitor"] = roles["monitor"].model_copy(update={"usergroup": MONITOR_GROUP})
    values: dict[str, Any] = {"roles": roles, "feeds": plan.feeds.model_copy(update={"rss": [], "mastodon": []})}
    values.update(overrides)
    return plan.model_copy(update=values)


@pytest.fixture
def plan() -> Plan:
    return make_test_plan()


def make_settings(database_url: str, emulator: SlackEmulator, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "slack_bot_token": BOT_TOKEN,
        "slack_signing_secret": SIGNING_SECRET,
        "slack_api_url": emulator.api_url,
        "database_url": database_url,
        "warroom_ingest_token": INGEST_TOKEN,
        "openai_api_key": None,
        "slack_app_token": None,
    }
    values.update(overrides)
    return Settings.model_validate(values)


@pytest.fixture
def settings(database_url: str, emulator: SlackEmulator) -> Settings:
    return make_settings(database_url, emulator)


@pytest.fixture
def runtime(settings: Settings, plan: Plan) -> Iterator[Runtime]:
    runtime = build_runtime(settings, plan)
    yield runtime
    if runtime.scheduler is not None:
        runtime.scheduler.shutdown()
    runtime.engine.dispose()


class AppServer(InProcessApp):
    """The real War Room WSGI app served by waitress on a free local port, and its worker, in this process."""


@pytest.fixture
def app_server(runtime: Runtime) -> Iterator[AppServer]:
    server = AppServer(runtime).start()
    yield server
    server.stop()


@pytest.fixture
def slack(app_server: AppServer, emulator: SlackEmulator) -> SlackClient:
    """Signs and sends Slack payloads to the running app."""
    return SlackClient(app_server.url, SIGNING_SECRET, emulator=emulator)


@pytest.fixture
def clock() -> Iterator[ManualClock]:
    """The bot's one clock, stopped at a known time and moved only by the test."""
    with running_on(ManualClock(datetime(2026, 11, 20, 9, 0, tzinfo=UTC))) as manual:
        assert isinstance(manual, ManualClock)
        yield manual
