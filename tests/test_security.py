"""Security through the real app over HTTP: signatures and replays, the ingest token, secrets in logs,
role checks on privileged actions, and Slack retries or double clicks that must not do anything twice."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from bot.background.runtime import Runtime
from bot.crisis import timeline
from bot.demo.signed_slack import SlackClient
from bot.demo.slack_emulator import SlackEmulator
from bot.infra.replay import SIGNATURE_WINDOW_SECONDS as WINDOW
from bot.infra.replay import ReplayGuard
from bot.infra.settings import Settings
from handlers.render.drafts import APPROVE, REASON_INPUT, REJECT, REJECT_VIEW
from models import Decision, Draft, RoleAssignment
from models.incidents import OPEN, RESOLVED
from tests.conftest import (
    APPROVER,
    BOT_TOKEN,
    BYSTANDER,
    DRAFTER,
    INGEST_TOKEN,
    LEAD,
    LIAISON,
    MONITOR,
    SIGNING_SECRET,
    AppServer,
)
from tests.fixtures_drafts import (
    WarRoom,
    action_ids,
    count,
    draft_message,
    drafts_of,
    events_of,
    open_war_room,
    wait_for_draft,
)
from tests.fixtures_lifecycle import OpenedIncident, incident, incidents, open_incident, rows, wait_until

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def crisis_form(text: str, user_id: str = BYSTANDER, channel_id: str = "C0GENERAL1") -> bytes:
    """A /crisis body as Slack sends it (response_url unused: these requests must never get that far)."""
    return urlencode({
        "token": "verification", "team_id": "T0001", "channel_id": channel_id, "channel_name": "general",
        "user_id": user_id, "user_name": "someone", "command": "/crisis", "text": text,
        "api_app_id": "A0001", "response_url": "http://127.0.0.1:9/unused", "trigger_id": "1.2.3",
    }).encode()


# ---- signatures ---------------------------------------------------------------------------------


def _bad_requests(slack: SlackClient) -> dict[str, tuple[bytes, dict[str, str]]]:
    body = crisis_form("open Hijacked incident")
    good = slack.sign(body)
    now = int(time.time())
    altered = crisis_form("open Something else entirely")
    return {
        "missing both headers": (body, {}),
        "missing signature": (body, {"X-Slack-Request-Timestamp": good["X-Slack-Request-Timestamp"]}),
        "missing timestamp": (body, {"X-Slack-Signature": good["X-Slack-Signature"]}),
        "stale by 5 minutes and a second": (body, slack.sign(body, timestamp=now - WINDOW - 1)),
        "an hour old": (body, slack.sign(body, timestamp=now - 3600)),
        "from the future": (body, slack.sign(body, timestamp=now + WINDOW + 60)),
        "signed with another secret": (body, SlackClient(slack.app_url, "not-" + SIGNING_SECRET).sign(body)),
        "altered body, original signature": (altered, good),
        "signature of another timestamp": (body, {**good, "X-Slack-Request-Timestamp": str(now - 1)}),
        "wrong scheme version": (body, {**good, "X-Slack-Signature": "v1=" + good["X-Slack-Signature"][3:]}),
        "empty signature": (body, {**good, "X-Slack-Signature": ""}),
        "timestamp not a number": (body, {**good, "X-Slack-Request-Timestamp": "soon"}),
    }


def test_every_bad_signature_is_refused_and_calls_nothing(slack: SlackClient,
                                                          emulator: SlackEmulator) -> None:
    for name, (body, headers) in _bad_requests(slack).items():
        response = slack.post(body, {**FORM, **headers})
        assert response.status_code == 401, name
    time.sleep(0.2)  # anything wrongly let through would act after its ack
    assert emulator.calls == []
    assert emulator.responses == []


def test_a_correct_signature_is_accepted(slack: SlackClient) -> None:
    body = crisis_form("help")
    response = slack.post(body, {**FORM, **slack.sign(body)})
    assert response.status_code == 200
    assert "/crisis open" in response.json()["text"]


def test_identical_request_replayed_within_five_minutes_is_refused(
    slack: SlackClient, emulator: SlackEmulator
) -> None:
    body = crisis_form("help")
    stamp = int(time.time())
    headers = {**FORM, **slack.sign(body, timestamp=stamp)}
    assert slack.post(body, headers).status_code == 200
    assert slack.post(body, headers).status_code == 401
    # The same command sent again by Slack is a new request with a new signature: still served.
    assert slack.post(body, {**FORM, **slack.sign(body, timestamp=stamp - 1)}).status_code == 200


def test_a_slack_retry_carries_a_fresh_signature_and_is_served(slack: SlackClient) -> None:
    event = json.dumps({"type": "url_verification", "challenge": "abc", "token": "verification"}).encode()
    stamp = int(time.time())
    first = slack.post(event, slack.sign(event, timestamp=stamp), content_type="application/json")
    resigned = slack.sign(event, timestamp=stamp - 2)
    retry = {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
    retried = slack.post(event, {**resigned, **retry}, content_type="application/json")
    assert (first.status_code, retried.status_code) == (200, 200)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def test_replay_guard_forgets_a_signature_once_bolt_would_call_it_stale() -> None:
    clock = FakeClock()
    guard = ReplayGuard(clock=clock)
    stamp = str(int(clock.now))
    assert guard.first_time("v0=aaa", stamp)
    assert not guard.first_time("v0=aaa", stamp)
    clock.now += WINDOW - 1
    assert not guard.first_time("v0=aaa", stamp), "still inside the window Bolt accepts"
    clock.now += 5
    assert guard.first_time("v0=bbb", str(int(clock.now)))
    assert len(guard) == 1, "expired signatures are dropped, so memory stays bounded by the window"


def test_replay_guard_remembers_future_timestamps_for_their_whole_window() -> None:
    clock = FakeClock()
    guard = ReplayGuard(clock=clock)
    future = str(int(clock.now) + WINDOW - 10)
    assert guard.first_time("v0=future", future)
    clock.now += WINDOW + 5
    assert not guard.first_time("v0=future", future), "Bolt still accepts it, so the guard must still refuse"


def test_replay_guard_is_bounded() -> None:
    guard = ReplayGuard(max_entries=3)
    stamp = str(int(time.time()))
    for index in range(10):
        assert guard.first_time(f"v0={index}", stamp)
    assert len(guard) == 3


# ---- the ingest token -----------------------------------------------------------------------------


def _mention() -> dict[str, object]:
    return {"platform": "x", "id": "sec-1", "text": "hello", "created_at": "2025-01-01T00:00:00Z"}


@pytest.mark.parametrize(
    "authorization",
    [
        "",
        "Bearer",
        f"Bearer {'x' * len(INGEST_TOKEN)}",  # same length, wrong
        f"Bearer {INGEST_TOKEN[:-1]}",  # a prefix
        f"Bearer {INGEST_TOKEN[:1]}",
        f"Bearer {INGEST_TOKEN}x",  # the token plus more
        f"Bearer {INGEST_TOKEN.upper()}",
        f"Basic {INGEST_TOKEN}",
        INGEST_TOKEN,
        f"Token {INGEST_TOKEN}",
    ],
)
def test_wrong_ingest_tokens_are_refused(app_server: AppServer, authorization: str) -> None:
    response = httpx.post(f"{app_server.url}/mentions", json=_mention(),
                          headers={"Authorization": authorization})
    assert response.status_code == 401


def test_the_right_ingest_token_is_accepted(app_server: AppServer) -> None:
    response = httpx.post(f"{app_server.url}/mentions", json=_mention(),
                          headers={"Authorization": f"Bearer {INGEST_TOKEN}"})
    assert response.status_code == 202, response.text


# ---- secrets never in logs ------------------------------------------------------------------------


SECRETS = (BOT_TOKEN, SIGNING_SECRET, INGEST_TOKEN)


def test_no_secret_is_ever_logged(slack: SlackClient, app_server: AppServer, emulator: SlackEmulator,
                                  caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    slack.command("help")
    slack.command("open Secrets stay secret")
    slack.command("no-such-command")
    body = crisis_form("help")
    slack.post(body, {**FORM, **SlackClient(slack.app_url, "nope").sign(body)})
    for authorization in (f"Bearer {INGEST_TOKEN}", "Bearer wrong"):
        httpx.post(f"{app_server.url}/mentions", json=_mention(), headers={"Authorization": authorization})
    httpx.post(f"{app_server.url}/mentions", content=b"{not json",
               headers={"Authorization": f"Bearer {INGEST_TOKEN}"})
    httpx.get(f"{app_server.url}/healthz")
    # A Web API call with the bot token, logged by slack_sdk at DEBUG.
    app_server.runtime.slack.auth_test()
    time.sleep(0.5)  # slow work after the acks logs too

    assert caplog.records, "the test must actually capture logs"
    assert any(record.levelno == logging.DEBUG for record in caplog.records)
    for record in caplog.records:
        rendered = record.getMessage() + (caplog.handler.format(record) if record.exc_info else "")
        for secret in SECRETS:
            assert secret not in rendered, f"{record.name} logged a secret: {rendered[:300]}"


def test_settings_and_runtime_never_print_secrets(settings: Settings, runtime: Runtime) -> None:
    for shown in (repr(settings), str(settings), settings.model_dump_json(), repr(runtime)):
        for secret in SECRETS:
            assert secret not in shown
    assert settings.slack_bot_token is not None and settings.slack_bot_token.get_secret_value() == BOT_TOKEN


# ---- role checks on every privileged action ------------------------------------------------------


class RecordingSlackClient(SlackClient):
    """The signed client, remembering the last body it sent so a test can send it again."""

    last: tuple[bytes, str] | None = None
    resent = 0

    def post(self, body: bytes, headers: Mapping[str, str] | None = None, *,
             content_type: str = "application/x-www-form-urlencoded") -> httpx.Response:
        self.last = (body, content_type)
        return super().post(body, headers, content_type=content_type)

    def resend(self, *, retry_num: int | None = None, same_signature: bool = False,
               headers: Mapping[str, str] | None = None) -> httpx.Response:
        """The last body again: re-signed as Slack signs a retry, or byte for byte (a replay)."""
        assert self.last is not None
        body, content_type = self.last
        # Each retry is signed at its own (past) second, as Slack signs each delivery anew.
        self.resent += 1
        stamp = int(time.time()) - self.resent
        sent = dict(headers or {}) if same_signature else self.sign(body, timestamp=stamp)
        if retry_num is not None:
            sent.update({"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": "http_timeout"})
        return SlackClient.post(self, body, sent, content_type=content_type)

    def send_and_keep(self, send: Callable[[], httpx.Response]) -> tuple[httpx.Response, dict[str, str]]:
        """Send through one of the payload methods, keeping the exact headers for a byte-for-byte replay."""
        kept: dict[str, str] = {}
        original = self.sign

        def sign(body: bytes, timestamp: int | None = None) -> dict[str, str]:
            kept.update(original(body, timestamp))
            return dict(kept)

        self.sign = sign  # type: ignore[method-assign]
        try:
            return send(), kept
        finally:
            self.sign = original  # type: ignore[method-assign]


@pytest.fixture
def signed(app_server: AppServer, emulator: SlackEmulator) -> RecordingSlackClient:
    return RecordingSlackClient(app_server.url, SIGNING_SECRET, emulator=emulator)


@pytest.fixture
def room(runtime: Runtime, emulator: SlackEmulator) -> WarRoom:
    return open_war_room(runtime, emulator)


def pending_draft(signed: RecordingSlackClient, runtime: Runtime, room: WarRoom) -> Draft:
    response = signed.command("draft x Where is my bag?", user_id=DRAFTER, channel_id=room.channel_id)
    assert response.status_code == 200
    draft = wait_for_draft(runtime, room.incident_id, "pending")
    signed.emulator.wait_for(lambda emu: APPROVE in action_ids(draft_message(emu, draft)))  # type: ignore[union-attr]
    return draft


def settle(emulator: SlackEmulator, quiet_seconds: float = 0.3, timeout: float = 10.0) -> None:
    """Wait until the app has stopped calling Slack (slow work after an ack must finish inside the test)."""
    deadline = time.monotonic() + timeout
    seen = -1
    while time.monotonic() < deadline:
        calls = len(emulator.calls) + len(emulator.responses)
        if calls == seen:
            return
        seen = calls
        time.sleep(quiet_seconds)
    raise AssertionError("the app kept calling Slack")


def refusals_to(emulator: SlackEmulator, user_id: str, how_many: int) -> list[dict[str, Any]]:
    return emulator.wait_for(lambda emu: len(emu.ephemerals(user=user_id)) >= how_many
                             and emu.ephemerals(user=user_id))


def test_only_the_approver_or_lead_may_approve_or_reject(signed: RecordingSlackClient, runtime: Runtime,
                                                          emulator: SlackEmulator, room: WarRoom) -> None:
    draft = pending_draft(signed, runtime, room)
    for user_id in (DRAFTER, MONITOR, LIAISON, BYSTANDER):
        signed.block_action(APPROVE, user_id=user_id, channel_id=room.channel_id)
        signed.block_action(REJECT, user_id=user_id, channel_id=room.channel_id)
        told = " / ".join(sorted(refusal["text"] for refusal in refusals_to(emulator, user_id, 2)))
        assert "may approve" in told and "may reject" in told, told
    # A reject form submitted by someone who never got it (the check is in the domain, not only the button).
    signed.view_submission(REJECT_VIEW, {REASON_INPUT: {REASON_INPUT: "I say so"}}, user_id=BYSTANDER,
                           private_metadata=str(draft.id), view={"id": "VFORGED1", "blocks": []})
    refusals_to(emulator, BYSTANDER, 3)
    assert emulator.opened_views == []
    assert drafts_of(runtime, room.incident_id)[-1].status == "pending"
    assert count(runtime, Decision) == 0

    signed.block_action(APPROVE, user_id=APPROVER, channel_id=room.channel_id)
    assert wait_for_draft(runtime, room.incident_id, "approved").decided_by == APPROVER
    settle(emulator)


@pytest.fixture
def opened(signed: RecordingSlackClient, emulator: SlackEmulator, runtime: Runtime) -> OpenedIncident:
    return open_incident(signed, emulator, runtime, "Security drill", user_id=LEAD)


def test_only_the_lead_may_resolve(signed: RecordingSlackClient, runtime: Runtime, emulator: SlackEmulator,
                                   opened: OpenedIncident) -> None:
    for user_id in (APPROVER, BYSTANDER):
        signed.command("resolve We are done", user_id=user_id, channel_id=opened.channel_id)
        told = emulator.wait_for(lambda emu, user_id=user_id: [r for r in emu.responses
                                                               if "Only the lead" in json.dumps(r)])
        assert told
    assert incident(runtime, opened.id).status == OPEN
    signed.command("resolve We are done", user_id=LEAD, channel_id=opened.channel_id)
    wait_until(lambda: incident(runtime, opened.id).status == RESOLVED, what="the lead's resolve")
    settle(emulator)


def current_leads(runtime: Runtime, incident_id: int) -> list[str]:
    return [row.user_id for row in rows(runtime, RoleAssignment, incident_id=incident_id, role="lead")
            if row.ended_at is None]


def test_only_the_lead_may_hand_over_the_lead(signed: RecordingSlackClient, runtime: Runtime,
                                              emulator: SlackEmulator, opened: OpenedIncident) -> None:
    for user_id in (APPROVER, BYSTANDER):
        signed.command(f"assign lead <@{user_id}>", user_id=user_id, channel_id=opened.channel_id)
    emulator.wait_for(lambda emu: len([r for r in emu.responses
                                       if "can hand the lead role" in json.dumps(r)]) == 2)
    assert current_leads(runtime, opened.id) == [LEAD]
    signed.command(f"assign lead <@{APPROVER}>", user_id=LEAD, channel_id=opened.channel_id)
    wait_until(lambda: current_leads(runtime, opened.id) == [APPROVER], what="the lead handing over")
    settle(emulator)


# ---- Slack retries and double submissions -----------------------------------------------------------


def test_retried_or_repeated_open_creates_one_incident(signed: RecordingSlackClient, runtime: Runtime,
                                                       emulator: SlackEmulator) -> None:
    response, headers = signed.send_and_keep(lambda: signed.command("open sev2 Repeated open", user_id=LEAD))
    assert response.status_code == 200
    signed.resend(same_signature=True, headers=headers)  # byte for byte: refused, or absorbed
    signed.resend()  # the same payload signed again
    signed.resend(retry_num=1)
    wait_until(lambda: [row for row in incidents(runtime) if row.status == OPEN], what="the incident to open")
    settle(emulator)  # any second open would have called Slack by now
    assert len(incidents(runtime)) == 1
    assert len(emulator.calls_to("conversations.create")) == 1


def test_retried_or_repeated_draft_request_creates_one_draft(signed: RecordingSlackClient, runtime: Runtime,
                                                              emulator: SlackEmulator, room: WarRoom) -> None:
    response, headers = signed.send_and_keep(
        lambda: signed.command("draft x Where is my bag?", user_id=DRAFTER, channel_id=room.channel_id))
    assert response.status_code == 200
    signed.resend(same_signature=True, headers=headers)
    signed.resend()
    signed.resend(retry_num=1)
    wait_for_draft(runtime, room.incident_id, "pending", index=0)
    settle(emulator)
    assert len(drafts_of(runtime, room.incident_id)) == 1


def test_retried_or_repeated_approve_records_one_decision(signed: RecordingSlackClient, runtime: Runtime,
                                                          emulator: SlackEmulator, room: WarRoom) -> None:
    draft = pending_draft(signed, runtime, room)
    message = draft_message(emulator, draft)
    response, headers = signed.send_and_keep(lambda: signed.block_action(
        APPROVE, user_id=APPROVER, channel_id=room.channel_id, message=dict(message)))
    assert response.status_code == 200
    signed.resend(same_signature=True, headers=headers)
    signed.resend()
    signed.resend(retry_num=1)
    signed.block_action(APPROVE, user_id=LEAD, channel_id=room.channel_id,
                        message=dict(message))
    wait_for_draft(runtime, room.incident_id, "approved")
    settle(emulator)
    assert count(runtime, Decision, incident_id=room.incident_id) == 1
    assert len(events_of(runtime, room.incident_id, timeline.DRAFT_APPROVED)) == 1
