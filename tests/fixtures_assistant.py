"""Shared by the assistant's tests (catch-up, post-mortem draft): a runtime with the local OpenAI-compatible
server as its LLM (or none, when a test parametrizes `with_llm` to False), an incident room opened at the
test clock's start, and a lead who works the room. Import the `*_fixture` names to get the fixtures."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bot.background.runtime import Runtime, build_runtime
from bot.demo.signed_slack import SlackClient
from bot.demo.slack_emulator import SlackEmulator
from bot.infra.clock import ManualClock
from models import Job, transaction
from models.jobs import DONE, FAILED
from tests.conftest import LEAD, AppServer, make_settings, make_test_plan
from tests.fixtures_drafts import WarRoom, add_mention, open_war_room, wait_until
from tests.openai_server import FakeOpenAI

MODEL = "gpt-4.1-mini"
LATE = "ULATE01"
HOSTILE = "<!channel> read <https://evil.example|this> & *now*"
ENTRY_LINE = re.compile(r"^#(\d+) ", re.MULTILINE)


@pytest.fixture(name="with_llm")
def with_llm_fixture() -> bool:
    return True


@pytest.fixture(name="openai_server")
def openai_server_fixture() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key="sk-test", timeout_delay=3.0) as server:
        yield server


@pytest.fixture(name="runtime")
def runtime_fixture(database_url: str, emulator: SlackEmulator, openai_server: FakeOpenAI, with_llm: bool
            ) -> Iterator[Runtime]:
    """conftest's runtime, with the local OpenAI-compatible server as its LLM unless `with_llm` is False."""
    llm: dict[str, Any] = (
        {"openai_api_key": "sk-test", "openai_base_url": openai_server.base_url, "warroom_llm_model": MODEL}
        if with_llm else {}
    )
    runtime = build_runtime(make_settings(database_url, emulator, **llm), make_test_plan())
    runtime.extras["llm_timeout"] = 0.25  # the server's "timeout" fault stalls 3 s
    yield runtime
    runtime.engine.dispose()


@pytest.fixture(name="app_server")
def app_server_fixture(runtime: Runtime) -> Iterator[AppServer]:
    server = AppServer(runtime).start()
    yield server
    server.stop()


@pytest.fixture(name="room")
def room_fixture(runtime: Runtime, emulator: SlackEmulator, clock: ManualClock) -> WarRoom:
    """An incident opened at the clock's start (so its age is the test's to set)."""
    emulator.add_user(LATE, "lou", real_name="Lou Late")
    return open_war_room(runtime, emulator)


def jobs_settled(runtime: Runtime) -> bool:
    with transaction(runtime.sessions) as session:
        return all(job.status in (DONE, FAILED) for job in session.scalars(select(Job)))


def run(slack: SlackClient, runtime: Runtime, text: str, user: str, room: WarRoom) -> None:
    """A /crisis command, acked with nothing (queued), and its job run."""
    acked = slack.command(text, user_id=user, channel_id=room.channel_id)
    assert acked.status_code == 200 and not acked.content, acked.text  # queued: the slow work is after the ack
    wait_until(lambda: jobs_settled(runtime), what=f"/crisis {text} done")


def busy_room(slack: SlackClient, runtime: Runtime, room: WarRoom, clock: ManualClock) -> None:
    """The lead works the room while the approver is away: each step a minute apart."""
    for text in ("fact The baggage belt at Gatwick restarted at 15:10 UTC",
                 "decide Hold the compensation post until legal signs off",
                 "severity sev1",
                 "rumor Passengers' bags were sold at auction",
                 "message We will update every hour at acmeair.example/status"):
        clock.advance(timedelta(minutes=1))
        run(slack, runtime, text, LEAD, room)
    clock.advance(timedelta(minutes=1))
    add_mention(runtime, text="Acme Air lost my bag again, worst airline")


