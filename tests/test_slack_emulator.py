"""The Slack emulator, driven by the real ``slack_sdk.WebClient`` over HTTP, and the signed-request
helper, driven into a real Bolt app. What passes here is what the rest of the suite may rely on."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import httpx
import pytest
from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator
from slack_sdk.models.blocks import (
    ActionsBlock,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    ImageElement,
    InputBlock,
    MarkdownTextObject,
    Option,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
    StaticSelectElement,
    UserSelectElement,
)
from slack_sdk.models.views import View
from slack_sdk.signature import SignatureVerifier

from bot.demo.signed_slack import DEFAULT_CHANNEL_ID, SlackClient
from bot.demo.slack_emulator import SlackEmulator, find_block_kit_problems, find_view_problems

LEAD, APPROVER, BYSTANDER = "ULEAD01", "UAPPROVE1", "UBYSTAND1"
SECRET = "emulator-test-secret"
FAST = FixedValueRetryIntervalCalculator(0.01)


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    """One HTTP client for the module: each new one builds a TLS context (~75 ms)."""
    with httpx.Client(timeout=5) as client:
        yield client


@pytest.fixture
def emu() -> Iterator[SlackEmulator]:
    with SlackEmulator() as emulator:
        emulator.add_user(LEAD, "lena", real_name="Lena Lead", tz="Europe/Paris")
        emulator.add_user(APPROVER, "abe", real_name="Abe Approver")
        emulator.add_user(BYSTANDER, "bea", real_name="Bea Bystander")
        emulator.add_usergroup("SMONITORS", "monitors", [BYSTANDER])
        yield emulator


@pytest.fixture
def client(emu: SlackEmulator) -> WebClient:
    """A client configured like the app's: it retries rate limits, 5xx and dropped connections."""
    return WebClient(base_url=emu.api_url, token="xoxb-test", retry_handlers=[
        RateLimitErrorRetryHandler(max_retry_count=2),
        ServerErrorRetryHandler(max_retry_count=2, interval_calculator=FAST),
        ConnectionErrorRetryHandler(max_retry_count=2, interval_calculator=FAST),
    ])


@pytest.fixture
def room(client: WebClient) -> str:
    """An incident channel the bot created, with the lead in it."""
    channel_id: str = client.conversations_create(name="inc-20250301-rumour")["channel"]["id"]
    client.conversations_invite(channel=channel_id, users=LEAD)
    return channel_id


def slack_error(call: Callable[..., Any], **kwargs: Any) -> str:
    """The Slack error code a call answers with."""
    with pytest.raises(SlackApiError) as raised:
        call(**kwargs)
    return str(raised.value.response["error"])


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


# ---- auth ------------------------------------------------------------------------------------


def test_auth_test_describes_the_bot(client: WebClient, emu: SlackEmulator) -> None:
    answer = client.auth_test()
    assert (answer["user_id"], answer["bot_id"], answer["team_id"]) == ("UBOT", emu.bot_id, "T0001")
    assert emu.calls_to("auth.test")[0].args == {}


def test_a_missing_or_non_bot_token_is_refused(emu: SlackEmulator) -> None:
    assert slack_error(WebClient(base_url=emu.api_url).auth_test) == "not_authed"
    assert slack_error(WebClient(base_url=emu.api_url, token="xoxp-user").auth_test) == "invalid_auth"


# ---- chat ------------------------------------------------------------------------------------


def test_post_message_answers_like_slack_and_stores_the_message(client: WebClient, emu: SlackEmulator,
                                                                room: str) -> None:
    blocks = [section("*Brief*")]
    answer = client.chat_postMessage(channel=room, text="Brief", blocks=blocks)

    assert answer["channel"] == room
    assert answer["message"]["ts"] == answer["ts"]
    assert answer["message"]["bot_id"] == emu.bot_id
    [stored] = emu.messages(room)
    assert (stored["ts"], stored["user"], stored["text"]) == (answer["ts"], "UBOT", "Brief")
    assert stored["blocks"] == blocks
    assert emu.calls_to("chat.postMessage")[0].args["blocks"] == blocks  # decoded, not a JSON string
    assert emu.errors == []


def test_post_message_needs_a_channel_the_bot_is_in(client: WebClient, emu: SlackEmulator) -> None:
    outside = emu.add_channel("press", [LEAD], bot_member=False)

    assert slack_error(client.chat_postMessage, channel=outside, text="hi") == "not_in_channel"
    assert slack_error(client.chat_postMessage, channel="C0NOWHERE1", text="hi") == "channel_not_found"
    assert emu.messages(outside) == []


def test_post_message_to_a_user_lands_in_their_dm(client: WebClient, emu: SlackEmulator) -> None:
    answer = client.chat_postMessage(channel=APPROVER, text="A draft needs you")
    dm = emu.dm_channel(APPROVER)
    assert dm is not None and answer["channel"] == dm.id
    assert [m["text"] for m in emu.messages(dm.id)] == ["A draft needs you"]


@pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing")
def test_a_message_without_text_or_blocks_is_no_text(client: WebClient, emu: SlackEmulator,
                                                     room: str) -> None:
    assert slack_error(client.chat_postMessage, channel=room) == "no_text"
    assert emu.errors == ["chat.postMessage: no_text"]


def test_message_text_over_40000_characters_is_too_long(client: WebClient, emu: SlackEmulator,
                                                        room: str) -> None:
    assert slack_error(client.chat_postMessage, channel=room, text="x" * 40_001) == "msg_too_long"
    assert emu.errors and emu.errors[0].startswith("chat.postMessage: msg_too_long")


def test_update_delete_and_permalink(client: WebClient, emu: SlackEmulator, room: str) -> None:
    ts = client.chat_postMessage(channel=room, text="Draft v1")["ts"]

    updated = client.chat_update(channel=room, ts=ts, text="Draft v2", blocks=[section("v2")])
    assert updated["message"]["text"] == "Draft v2"
    [message] = emu.messages(room)
    assert [edit["text"] for edit in message["edits"]] == ["Draft v2"]
    assert message["blocks"] == [section("v2")]

    link = client.chat_getPermalink(channel=room, message_ts=ts)["permalink"]
    assert link == f"https://warroom-test.slack.com/archives/{room}/p{ts.replace('.', '')}"

    client.chat_delete(channel=room, ts=ts)
    assert emu.messages(room) == []
    assert emu.channels[room].deleted[0]["text"] == "Draft v2"
    someone_elses = emu.add_message(room, "my own words", user=LEAD)
    assert slack_error(client.chat_update, channel=room, ts=someone_elses, text="x") == "cant_update_message"
    assert slack_error(client.chat_update, channel=room, ts=ts, text="x") == "message_not_found"
    assert slack_error(client.chat_delete, channel=room, ts=ts) == "message_not_found"


def test_post_ephemeral_reaches_only_channel_members(client: WebClient, emu: SlackEmulator,
                                                     room: str) -> None:
    answer = client.chat_postEphemeral(channel=room, user=LEAD, text="Only you can see this")

    assert answer["message_ts"]
    assert [e["text"] for e in emu.ephemerals(user=LEAD, channel=room)] == ["Only you can see this"]
    assert emu.messages(room) == []
    error = slack_error(client.chat_postEphemeral, channel=room, user=APPROVER, text="x")
    assert error == "user_not_in_channel"


# ---- conversations ---------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "error"), [
    ("", "invalid_name_required"),
    ("x" * 81, "invalid_name_maxlength"),
    ("Crisis Room", "invalid_name_specials"),
    ("crisis.room", "invalid_name_specials"),
    ("--__", "invalid_name_punctuation"),
])
def test_channel_names_are_checked_like_slack(client: WebClient, name: str, error: str) -> None:
    assert slack_error(client.conversations_create, name=name) == error


def test_create_channel(client: WebClient, emu: SlackEmulator) -> None:
    name = "inc-20250301-" + "a" * 67  # exactly 80 characters
    channel = client.conversations_create(name=name, is_private=True)["channel"]

    assert (channel["name"], channel["is_private"], channel["is_member"]) == (name, True, True)
    stored = emu.channel_by_name(name)
    assert stored is not None and stored.members == {"UBOT"} and stored.is_private
    assert slack_error(client.conversations_create, name=name) == "name_taken"


def test_invite_takes_up_to_1000_users_in_one_call(client: WebClient, emu: SlackEmulator, room: str) -> None:
    crowd = [f"UCROWD{n:04d}" for n in range(1001)]
    for user_id in crowd:
        emu.add_user(user_id, user_id.lower())

    assert slack_error(client.conversations_invite, channel=room, users=crowd) == "too_many_users"
    client.conversations_invite(channel=room, users=crowd[:1000])
    assert len(emu.channels[room].members) == 1002  # the crowd, the lead and the bot


def test_invite_errors(client: WebClient, emu: SlackEmulator, room: str) -> None:
    assert slack_error(client.conversations_invite, channel=room, users=[LEAD]) == "already_in_channel"
    client.conversations_invite(channel=room, users=[LEAD, APPROVER])  # some new ones: fine
    assert emu.channels[room].members == {"UBOT", LEAD, APPROVER}

    error = slack_error(client.conversations_invite, channel=room, users=["UBOT", BYSTANDER])
    assert error == "cant_invite_self"
    with pytest.raises(SlackApiError) as raised:
        client.conversations_invite(channel=room, users=[BYSTANDER, "UNOBODY1"])
    assert raised.value.response["error"] == "user_not_found"
    assert raised.value.response["errors"] == [{"user": "UNOBODY1", "ok": False, "error": "user_not_found"}]
    assert BYSTANDER not in emu.channels[room].members  # nothing half-done

    assert slack_error(client.conversations_invite, channel="C0NOWHERE1", users=[LEAD]) == "channel_not_found"
    assert slack_error(client.conversations_invite, channel=room, users="") == "no_user"


def test_join_topic_purpose_info_and_members(client: WebClient, emu: SlackEmulator, room: str) -> None:
    lobby = emu.add_channel("comms-lobby", [LEAD], bot_member=False)
    assert client.conversations_join(channel=lobby)["channel"]["is_member"] is True

    client.conversations_setTopic(channel=room, topic="SEV2 · Lena leads")
    client.conversations_setPurpose(channel=room, purpose="Rumour about the recall")
    assert slack_error(client.conversations_setTopic, channel=room, topic="x" * 251) == "too_long"

    info = client.conversations_info(channel=room)["channel"]
    assert info["topic"]["value"] == emu.channels[room].topic == "SEV2 · Lena leads"
    assert info["purpose"]["value"] == emu.channels[room].purpose == "Rumour about the recall"
    assert client.conversations_members(channel=room)["members"] == sorted(["UBOT", LEAD])


def test_history_pages_newest_first_without_thread_replies(client: WebClient, room: str) -> None:
    stamps = [client.chat_postMessage(channel=room, text=f"update {n}")["ts"] for n in range(5)]
    client.chat_postMessage(channel=room, text="a reply", thread_ts=stamps[0])

    # slack_sdk follows next_cursor when a response is iterated (the response object is reused)
    history = client.conversations_history(channel=room, limit=2)
    pages = [[m["ts"] for m in page["messages"]] for page in history]
    assert [len(page) for page in pages] == [2, 2, 1]
    assert [ts for page in pages for ts in page] == stamps[::-1]
    thread = client.conversations_replies(channel=room, ts=stamps[0])["messages"]
    assert [m["text"] for m in thread] == ["update 0", "a reply"]


def test_list_shows_private_channels_only_to_members(client: WebClient, emu: SlackEmulator,
                                                     room: str) -> None:
    secret = emu.add_channel("secret-hr", [LEAD], is_private=True, bot_member=False)
    listed = client.conversations_list(types="public_channel,private_channel")["channels"]
    assert {c["name"] for c in listed} == {"inc-20250301-rumour"}
    assert slack_error(client.conversations_info, channel=secret) == "channel_not_found"


def test_pins_and_reactions(client: WebClient, emu: SlackEmulator, room: str) -> None:
    ts = client.chat_postMessage(channel=room, text="Brief")["ts"]

    client.pins_add(channel=room, timestamp=ts)
    assert emu.channels[room].pins == [ts]
    assert slack_error(client.pins_add, channel=room, timestamp=ts) == "already_pinned"
    assert slack_error(client.pins_add, channel=room, timestamp="1.000001") == "message_not_found"

    client.reactions_add(channel=room, timestamp=ts, name="white_check_mark")
    assert emu.messages(room)[0]["reactions"] == [{"name": "white_check_mark", "users": ["UBOT"], "count": 1}]
    error = slack_error(client.reactions_add, channel=room, timestamp=ts, name="white_check_mark")
    assert error == "already_reacted"


# ---- users and groups ------------------------------------------------------------------------


def test_users_and_usergroups(client: WebClient) -> None:
    lena = client.users_info(user=LEAD)["user"]
    assert (lena["name"], lena["real_name"], lena["tz"], lena["tz_offset"] > 0) == (
        "lena", "Lena Lead", "Europe/Paris", True)
    assert slack_error(client.users_info, user="UNOBODY1") == "user_not_found"
    assert {m["id"] for m in client.users_list()["members"]} == {"UBOT", LEAD, APPROVER, BYSTANDER}
    assert client.usergroups_users_list(usergroup="SMONITORS")["users"] == [BYSTANDER]
    assert slack_error(client.usergroups_users_list, usergroup="SNOPE") == "no_such_subteam"


# ---- views -----------------------------------------------------------------------------------


def modal(title: str = "Open incident", callback_id: str = "open_incident") -> dict[str, Any]:
    return View(type="modal", callback_id=callback_id, title=title, submit="Open", blocks=[
        InputBlock(block_id="title", label="Title", element=PlainTextInputElement(action_id="value")),
    ]).to_dict()


def test_a_trigger_id_opens_one_modal_within_3_seconds(client: WebClient, emu: SlackEmulator) -> None:
    trigger = emu.trigger_id()
    view = client.views_open(trigger_id=trigger, view=modal())["view"]

    assert view["id"].startswith("V") and view["callback_id"] == "open_incident"
    assert emu.opened_views[0]["trigger_id"] == trigger
    assert emu.opened_views[0]["view"]["blocks"][0]["block_id"] == "title"
    assert slack_error(client.views_open, trigger_id=trigger, view=modal()) == "exchanged_trigger_id"
    stale = emu.trigger_id(issued_ago=3.5)
    assert slack_error(client.views_open, trigger_id=stale, view=modal()) == "expired_trigger_id"
    assert slack_error(client.views_open, trigger_id="expired.123.abc", view=modal()) == "expired_trigger_id"
    client.views_open(trigger_id="12345.98765.abcd2358fdea", view=modal())  # never minted: accepted


def test_views_push_update_and_publish(client: WebClient, emu: SlackEmulator) -> None:
    root = client.views_open(trigger_id=emu.trigger_id(), view=modal())["view"]
    pushed = client.views_push(trigger_id=emu.trigger_id(), view=modal("Reason", "reject_reason"))["view"]
    assert pushed["previous_view_id"] == root["id"]

    updated = client.views_update(view_id=root["id"], hash=root["hash"], view=modal("Opening…"))["view"]
    assert updated["title"]["text"] == "Opening…"
    stale = {"view_id": root["id"], "hash": root["hash"], "view": modal()}
    assert slack_error(client.views_update, **stale) == "hash_conflict"
    assert slack_error(client.views_update, view_id="V0NOPE", view=modal()) == "not_found"

    home = View(type="home", blocks=[SectionBlock(text="*No open incidents*")]).to_dict()
    client.views_publish(user_id=LEAD, view=home)
    published = emu.published_home(LEAD)
    assert published is not None and published["blocks"][0]["text"]["text"] == "*No open incidents*"
    assert emu.published_home(APPROVER) is None
    assert emu.errors == []


def test_a_view_slack_would_refuse_is_invalid_arguments(client: WebClient, emu: SlackEmulator) -> None:
    too_long_title = {**modal(), "title": {"type": "plain_text", "text": "x" * 25}}
    with pytest.raises(SlackApiError) as raised:
        client.views_open(trigger_id=emu.trigger_id(), view=too_long_title)
    assert raised.value.response["error"] == "invalid_arguments"
    assert raised.value.response["response_metadata"]["messages"][0].startswith("[ERROR] title must be")
    assert len(emu.errors) == 1 and emu.errors[0].startswith("views.open: invalid_arguments: title")
    assert slack_error(client.views_publish, user_id=LEAD, view=modal()) == "invalid_arguments"  # not a home


# ---- files -----------------------------------------------------------------------------------


def test_files_upload_v2_round_trip(client: WebClient, emu: SlackEmulator, http: httpx.Client,
                                    room: str) -> None:
    parent = client.chat_postMessage(channel=room, text="Resolved")["ts"]
    content = "# Post-mortem\n\nTimeline…\n"

    answer = client.files_upload_v2(
        channel=room, content=content, filename="postmortem.md", title="Post-mortem",
        initial_comment="Here is the export", thread_ts=parent,
    )

    assert [c.method for c in emu.calls][-3:] == [
        "files.getUploadURLExternal", "file_upload", "files.completeUploadExternal"]
    [uploaded] = emu.files
    assert (uploaded["name"], uploaded["title"], uploaded["bytes"], uploaded["channel"]) == (
        "postmortem.md", "Post-mortem", content.encode(), room)
    assert answer["file"]["id"] == uploaded["id"]
    share = emu.messages(room)[-1]
    assert (share["text"], share["thread_ts"], share["files"][0]["id"]) == ("Here is the export", parent,
                                                                         uploaded["id"])
    info = client.files_info(file=uploaded["id"])["file"]
    assert (info["name"], info["size"], info["mimetype"]) == ("postmortem.md", len(content.encode()),
                                                             "text/markdown")
    download = http.get(info["url_private"], headers={"Authorization": "Bearer xoxb-test"})
    assert download.content == content.encode()
    assert slack_error(client.files_info, file="F0NOPE") == "file_not_found"


# ---- response_url ----------------------------------------------------------------------------


def test_response_url_honours_response_type_replace_and_delete(client: WebClient, emu: SlackEmulator,
                                                               room: str, http: httpx.Client) -> None:
    ts = client.chat_postMessage(channel=room, text="Draft", blocks=[section("Draft")])["ts"]
    url = emu.response_url(channel_id=room, user_id=LEAD, message_ts=ts)

    assert http.post(url, json={"text": "Only the approver can approve."}).text == "ok"
    assert http.post(url, json={"text": "Approved by Abe", "replace_original": True}).status_code == 200
    announce = {"response_type": "in_channel", "text": "Statement approved"}
    assert http.post(url, json=announce).status_code == 200

    assert [e["text"] for e in emu.ephemerals(user=LEAD)] == ["Only the approver can approve."]
    draft, announcement = emu.messages(room)
    assert (draft["text"], "blocks" in draft, len(draft["edits"])) == ("Approved by Abe", False, 1)
    assert announcement["text"] == "Statement approved"
    assert [payload["text"] for _, payload in emu.responses] == [
        "Only the approver can approve.", "Approved by Abe", "Statement approved"]

    assert http.post(url, json={"delete_original": True}).status_code == 200
    assert [m["text"] for m in emu.messages(room)] == ["Statement approved"]
    assert http.post(url, json={"text": "fifth"}).text == "ok"
    assert http.post(url, json={"text": "sixth"}).text == "used_url"  # five uses, as in Slack
    assert emu.errors == []


def test_response_url_refuses_bad_blocks(emu: SlackEmulator, http: httpx.Client) -> None:
    url = emu.response_url(channel_id=DEFAULT_CHANNEL_ID, user_id=LEAD)
    answer = http.post(url, json={"blocks": [section("x" * 3001)]})
    assert (answer.status_code, answer.text) == (400, "invalid_blocks")
    assert emu.errors[0].startswith("response_url: invalid_blocks")
    assert http.post(url, json={}).text == "no_text"


# ---- Block Kit validation --------------------------------------------------------------------


@pytest.mark.parametrize(("blocks", "expected"), [
    ([section("x" * 3001)], "text attribute cannot exceed 3000 characters"),
    ([section("ok")] * 51, "no more than 50 items allowed"),
    ([{"type": "header", "text": {"type": "plain_text", "text": "x" * 151}}], "cannot exceed 150"),
    ([{"type": "header", "text": {"type": "mrkdwn", "text": "*Brief*"}}], "must be a plain_text text object"),
    ([{"type": "section", "text": "bare string"}], "must be an object"),
    ([{**section("x"), "acton_id": "x"}], "unsupported field 'acton_id'"),
    ([{"type": "sectoin", "text": {"type": "mrkdwn", "text": "x"}}], "unsupported block type 'sectoin'"),
    ([{"type": "section", "fields": [{"type": "mrkdwn", "text": "x" * 2001}]}], "less than 2001 characters"),
    ([{"type": "actions", "elements": [{"type": "button", "action_id": "a" * 256,
                                        "text": {"type": "plain_text", "text": "Go"}}]}], "action_id"),
    ([{"type": "actions", "elements": []}], "at least 1 item"),
    ([{**section("a"), "block_id": "brief"}, {**section("b"), "block_id": "brief"}], "duplicate block_id"),
])
def test_message_blocks_slack_would_refuse(client: WebClient, emu: SlackEmulator, room: str,
                                           blocks: list[dict[str, Any]], expected: str) -> None:
    with pytest.raises(SlackApiError) as raised:
        client.chat_postMessage(channel=room, text="fallback", blocks=blocks)
    assert raised.value.response["error"] == "invalid_blocks"
    assert any(expected in message for message in raised.value.response["response_metadata"]["messages"])
    assert emu.errors and all(e.startswith("chat.postMessage: invalid_blocks") for e in emu.errors)
    assert emu.messages(room) == []


def test_blocks_built_with_slack_sdk_models_are_accepted(client: WebClient, emu: SlackEmulator,
                                                         room: str) -> None:
    severity = [Option(text=PlainTextObject(text=s), value=s) for s in ("sev1", "sev2")]
    blocks = [
        HeaderBlock(text="Rumour: product recall"),
        SectionBlock(text=MarkdownTextObject(text="*Lead:* <@ULEAD01>"), accessory=ButtonElement(
            text="Claim", action_id="claim_role", value="approver",
            confirm=ConfirmObject(title="Claim?", text="Sure?", confirm="Yes", deny="No"))),
        SectionBlock(fields=[MarkdownTextObject(text="*Severity*"), PlainTextObject(text="SEV2")]),
        DividerBlock(),
        ContextBlock(elements=[MarkdownTextObject(text="Opened by Lena"),
                               ImageElement(image_url="https://example.com/a.png", alt_text="chart")]),
        ActionsBlock(elements=[ButtonElement(text="Approve", action_id="approve", value="1", style="primary"),
                               ButtonElement(text="Reject", action_id="reject", value="1", style="danger"),
                               StaticSelectElement(placeholder="Severity", action_id="severity",
                                                   options=severity)]),
    ]
    as_dicts = [block.to_dict() for block in blocks]
    assert find_block_kit_problems(as_dicts) == []
    client.chat_postMessage(channel=room, text="Brief", blocks=as_dicts)

    inputs = [
        InputBlock(block_id="title", label="Title",
                   element=PlainTextInputElement(action_id="value", max_length=150, initial_value="Recall")),
        InputBlock(block_id="who", label="Lead", element=UserSelectElement(action_id="value")),
    ]
    form = View(type="modal", callback_id="open", title="Open incident", submit="Open", close="Cancel",
                blocks=[*inputs, *blocks[:5]] * 10).to_dict()
    form["blocks"] = [{k: v for k, v in b.items() if k != "block_id"} for b in form["blocks"]]
    assert len(form["blocks"]) == 70 and find_view_problems(form) == []
    client.views_open(trigger_id=emu.trigger_id(), view=form)
    assert emu.errors == []


# ---- fault injection -------------------------------------------------------------------------


def test_an_injected_error_answers_once(client: WebClient, emu: SlackEmulator) -> None:
    emu.fail("conversations.create", error="name_taken")
    assert slack_error(client.conversations_create, name="inc-a") == "name_taken"
    assert client.conversations_create(name="inc-a")["ok"] is True


def test_rate_limit_answers_429_with_retry_after_and_the_client_retries(
        client: WebClient, emu: SlackEmulator, room: str) -> None:
    emu.rate_limit("chat.postMessage", retry_after=0)
    with pytest.raises(SlackApiError) as raised:
        WebClient(base_url=emu.api_url, token="xoxb-test").chat_postMessage(channel=room, text="x")
    assert raised.value.response.status_code == 429
    assert raised.value.response.headers["Retry-After"] == "0"
    assert raised.value.response["error"] == "ratelimited"

    emu.rate_limit("chat.postMessage", retry_after=0)
    client.chat_postMessage(channel=room, text="after the limit")
    assert len(emu.calls_to("chat.postMessage")) == 3
    assert [m["text"] for m in emu.messages(room)] == ["after the limit"]


@pytest.mark.parametrize(("inject", "attempts"), [
    (lambda emu: emu.server_error("conversations.create", times=2), 3),
    (lambda emu: emu.server_error("conversations.create", status=503), 2),
    (lambda emu: emu.drop_connection("conversations.create", times=2), 3),
])
def test_the_client_survives_server_errors_and_dropped_connections(
        client: WebClient, emu: SlackEmulator, inject: Callable[[SlackEmulator], None],
        attempts: int) -> None:
    inject(emu)
    client.conversations_create(name="inc-retried")
    assert emu.channel_by_name("inc-retried") is not None
    assert len(emu.calls_to("conversations.create")) == attempts


def test_clear_faults_drops_every_queued_fault_and_keeps_the_calls(client: WebClient, emu: SlackEmulator,
                                                                   room: str) -> None:
    emu.fail("conversations.create", error="name_taken", times=5)
    emu.server_error("chat.postMessage", times=3)
    emu.drop_connection("auth.test")
    assert slack_error(client.conversations_create, name="inc-b") == "name_taken"
    calls_before = len(emu.calls)

    emu.clear_faults()

    assert client.conversations_create(name="inc-b")["ok"] is True
    client.chat_postMessage(channel=room, text="healthy again")
    assert client.auth_test()["ok"] is True
    # One attempt each: nothing was left queued to make the client retry.
    assert [call.args["name"] for call in emu.calls_to("conversations.create")][-2:] == ["inc-b", "inc-b"]
    assert len([call for call in emu.calls_to("conversations.create") if call.args["name"] == "inc-b"]) == 2
    assert len(emu.calls_to("chat.postMessage")) == 1
    assert len(emu.calls_to("auth.test")) == 1
    assert len(emu.calls) == calls_before + 3
    emu.clear_faults()  # clearing nothing is fine
    emu.fail("auth.test")  # and faults can be queued again afterwards
    assert slack_error(client.auth_test) == "name_taken"


def test_a_dropped_connection_is_an_error_without_retries(emu: SlackEmulator) -> None:
    emu.drop_connection("auth.test")
    with pytest.raises(ConnectionError):  # http.client.RemoteDisconnected
        WebClient(base_url=emu.api_url, token="xoxb-test", retry_handlers=[]).auth_test()


# ---- concurrency and waiting -----------------------------------------------------------------


def test_twenty_concurrent_posts(client: WebClient, emu: SlackEmulator, room: str) -> None:
    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(lambda n: client.chat_postMessage(channel=room, text=f"post {n}"), range(20)))
    stamps = [answer["ts"] for answer in answers]

    assert len(set(stamps)) == 20
    assert sorted(m["text"] for m in emu.messages(room)) == sorted(f"post {n}" for n in range(20))
    assert len(emu.calls_to("chat.postMessage")) == 20


def test_wait_for_returns_the_value_or_reports_the_calls(client: WebClient, emu: SlackEmulator,
                                                         room: str) -> None:
    timer = threading.Timer(0.1, lambda: client.chat_postMessage(channel=room, text="late"))
    timer.start()
    message = emu.wait_for(lambda e: next(m for m in e.messages(room) if m["text"] == "late"), timeout=3)
    assert message["user"] == "UBOT"

    with pytest.raises(AssertionError) as raised:
        emu.wait_for(lambda e: e.channels["C0NEVER"].pins, timeout=0.1)
    report = str(raised.value)
    assert "condition not met within 0.1s" in report
    assert "chat.postMessage(channel=" in report and "text=late" in report


# ---- the signed-request helper ---------------------------------------------------------------


def test_signatures_verify_and_stale_ones_do_not() -> None:
    signer = SlackClient("http://127.0.0.1:9", SECRET)
    body = b"command=%2Fcrisis&text=help"
    headers, stale = signer.sign(body), signer.sign(body, int(time.time()) - 360)

    assert SignatureVerifier(SECRET).is_valid_request(body, headers)
    assert not SignatureVerifier(SECRET).is_valid_request(body, stale)
    assert not SignatureVerifier("another-secret").is_valid_request(body, headers)


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietWSGIRequestHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass


@pytest.fixture
def bolt(emu: SlackEmulator) -> Iterator[tuple[SlackClient, list[tuple[str, dict[str, Any]]]]]:
    """A minimal Bolt app on the emulator, served over HTTP; it records what each listener received."""
    seen: list[tuple[str, dict[str, Any]]] = []
    app = App(client=WebClient(base_url=emu.api_url, token="xoxb-test"), signing_secret=SECRET,
              token_verification_enabled=False)

    @app.command("/crisis")
    def command(ack: Any, body: dict[str, Any], respond: Any, client: WebClient) -> None:
        ack()
        seen.append(("command", body))
        respond(f"You said: {body['text']}")
        client.views_open(trigger_id=body["trigger_id"], view=modal())

    @app.action("approve")
    def approve(ack: Any, body: dict[str, Any], respond: Any) -> None:
        ack()
        seen.append(("action", body))
        respond(replace_original=True, text="Approved")

    @app.view("open_incident")
    def submitted(ack: Any, body: dict[str, Any], view: dict[str, Any]) -> None:
        ack()
        seen.append(("view", view))

    @app.shortcut("track_rumour")
    def shortcut(ack: Any, body: dict[str, Any]) -> None:
        ack()
        seen.append(("shortcut", body))

    @app.event("app_home_opened")
    def home(event: dict[str, Any]) -> None:
        seen.append(("event", event))

    server = make_server("127.0.0.1", 0, SlackRequestHandler(app), server_class=_ThreadingWSGIServer,
                         handler_class=_QuietWSGIRequestHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield SlackClient(f"http://127.0.0.1:{server.server_port}", SECRET, emulator=emu), seen
    server.shutdown()
    server.server_close()


def test_helper_payloads_reach_bolt_listeners(bolt: tuple[SlackClient, list[tuple[str, dict[str, Any]]]],
                                              client: WebClient, emu: SlackEmulator, room: str) -> None:
    slack, seen = bolt

    assert slack.command("open sev2 Recall rumour", user_id=LEAD).status_code == 200
    emu.wait_for(lambda e: e.ephemerals(user=LEAD) and e.opened_views)
    kind, body = seen[0]
    assert (kind, body["command"], body["text"], body["channel_id"]) == (
        "command", "/crisis", "open sev2 Recall rumour", DEFAULT_CHANNEL_ID)
    assert emu.ephemerals(user=LEAD)[0]["text"] == "You said: open sev2 Recall rumour"

    assert slack.view_submission("open_incident", {"title": {"value": "Recall rumour"}}).status_code == 200
    view = emu.wait_for(lambda e: next(b for k, b in seen if k == "view"))
    assert view["state"]["values"]["title"]["value"]["value"] == "Recall rumour"
    assert view["id"] == emu.opened_views[0]["view_id"]
    assert emu.opened_views[0]["user"] == LEAD

    buttons = ActionsBlock(block_id="draft_actions",
                           elements=[ButtonElement(text="Approve", action_id="approve", value="draft-7")])
    ts = client.chat_postMessage(channel=room, text="Draft", blocks=[buttons.to_dict()])["ts"]
    assert slack.block_action("approve", user_id=APPROVER, channel_id=room).status_code == 200
    emu.wait_for(lambda e: e.messages(room)[0]["text"] == "Approved")
    action_body = next(b for k, b in seen if k == "action")
    assert action_body["actions"][0]["block_id"] == "draft_actions"
    assert action_body["actions"][0]["value"] == "draft-7"
    assert action_body["container"] == {"type": "message", "message_ts": ts, "channel_id": room,
                                        "is_ephemeral": False}

    post = emu.add_message(room, "They say the recall is a cover-up", user=LEAD)
    [posted] = [m for m in emu.messages(room) if m["ts"] == post]
    assert slack.message_shortcut("track_rumour", posted, channel_id=room).status_code == 200
    assert slack.event({"type": "app_home_opened", "user": LEAD, "tab": "home"}).status_code == 200
    emu.wait_for(lambda e: {"shortcut", "event"} <= {k for k, _ in seen})
    shortcut = next(b for k, b in seen if k == "shortcut")
    assert shortcut["message"]["text"] == "They say the recall is a cover-up"
    assert shortcut["channel"]["id"] == room
    assert slack.url_verification("challenge-123").json() == {"challenge": "challenge-123"}
    assert emu.errors == []


def test_bolt_refuses_unsigned_stale_and_forged_requests(
        bolt: tuple[SlackClient, list[tuple[str, dict[str, Any]]]]) -> None:
    slack, seen = bolt
    body = b"command=%2Fcrisis&text=help&user_id=ULEAD01"

    assert slack.post(body).status_code == 401
    assert slack.post(body, slack.sign(body, int(time.time()) - 360)).status_code == 401
    assert slack.post(body, {**slack.sign(body), "X-Slack-Signature": "v0=" + "0" * 64}).status_code == 401
    assert seen == []
