"""The running app over HTTP: signatures, /crisis help, unknown subcommands, /healthz, /mentions without a token."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest

from bot.background.runtime import build_runtime
from bot.demo.signed_slack import SlackClient
from bot.demo.slack_emulator import SlackEmulator
from tests.conftest import BYSTANDER, AppServer, make_settings


def _crisis_form(text: str) -> bytes:
    return httpx.QueryParams(
        {"command": "/crisis", "text": text, "user_id": BYSTANDER, "channel_id": "CGENERAL1", "team_id": "T0001",
         "response_url": "http://127.0.0.1:9/unused", "trigger_id": "1.2.3"}
    ).__str__().encode()


def test_unsigned_request_is_refused_without_a_slack_call(slack: SlackClient, emulator: SlackEmulator) -> None:
    response = slack.post(_crisis_form("help"), {"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 401
    assert emulator.calls == []


def test_stale_and_wrong_signatures_are_refused(slack: SlackClient, emulator: SlackEmulator) -> None:
    body = _crisis_form("help")
    stale = slack.sign(body, timestamp=int(time.time()) - 6 * 60)
    assert slack.post(body, {**stale, "Content-Type": "application/x-www-form-urlencoded"}).status_code == 401
    wrong = SlackClient(slack.app_url, "not-the-secret").sign(body)
    assert slack.post(body, {**wrong, "Content-Type": "application/x-www-form-urlencoded"}).status_code == 401
    assert emulator.calls == []


@pytest.mark.parametrize("text", ["", "help", "  HELP  "])
def test_help_answers_with_usage_well_inside_three_seconds(slack: SlackClient, text: str) -> None:
    started = time.monotonic()
    response = slack.command(text, user_id=BYSTANDER)
    elapsed = time.monotonic() - started
    assert response.status_code == 200
    body = response.json()
    assert body["response_type"] == "ephemeral"
    for subcommand in ("open", "assign", "roles", "severity", "status", "fact", "message", "rumor", "draft",
                       "decide", "digest", "export", "resolve"):
        assert f"/crisis {subcommand}" in body["text"]
    assert elapsed < 3.0


def test_unknown_subcommand_names_it_and_shows_usage(slack: SlackClient, emulator: SlackEmulator) -> None:
    response = slack.command("launch <!channel> rockets", user_id=BYSTANDER)
    assert response.status_code == 200
    body = response.json()
    assert "`launch` is not a /crisis command" in body["text"]
    assert "/crisis open" in body["text"]
    assert "<!channel>" not in json.dumps(body)


def test_healthz_is_ok_after_a_database_round_trip(app_server: AppServer) -> None:
    response = httpx.get(f"{app_server.url}/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


@pytest.fixture
def broken_database_server(emulator: SlackEmulator, plan) -> Iterator[AppServer]:  # type: ignore[no-untyped-def]
    settings = make_settings("postgresql+psycopg://nobody@127.0.0.1:1/none", emulator)
    runtime = build_runtime(settings, plan)
    server = AppServer(runtime).start()
    yield server
    server.stop()


def test_healthz_is_503_when_the_database_is_down(broken_database_server: AppServer) -> None:
    response = httpx.get(f"{broken_database_server.url}/healthz", timeout=15)
    assert response.status_code == 503
    assert response.json()["database"] == "unreachable"


def test_mentions_endpoint_is_503_without_an_ingest_token(emulator: SlackEmulator, plan, database_url: str) -> None:  # type: ignore[no-untyped-def]
    runtime = build_runtime(make_settings(database_url, emulator, warroom_ingest_token=None), plan)
    server = AppServer(runtime).start()
    try:
        response = httpx.post(f"{server.url}/mentions", json={"platform": "x"},
                              headers={"Authorization": "Bearer anything"})
        assert response.status_code == 503
        assert "WARROOM_INGEST_TOKEN" in response.json()["error"]
    finally:
        server.stop()
        runtime.engine.dispose()


def test_no_slack_call_or_connection_at_import_and_build(emulator: SlackEmulator, plan, database_url: str) -> None:  # type: ignore[no-untyped-def]
    """Building the runtime and the app touches neither Slack nor the database."""
    from bot.app import create_bolt_app

    runtime = build_runtime(make_settings(database_url, emulator), plan)
    create_bolt_app(runtime)
    assert emulator.calls == []
    assert runtime.engine.pool.checkedout() == 0
    runtime.engine.dispose()

