"""Publishing approved replies: signed clicks into the running app, the Slack emulator for what people see,
the Mastodon and Bluesky emulators (tests/mastodon_server.py, tests/bluesky_server.py) reached through
Mastodon.py and the atproto SDK, and the database for what was recorded."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from bot.background.runtime import Runtime
from bot.crisis.plan import BlueskyAccount, MastodonAccount, Plan, Publishing
from bot.demo.signed_slack import SlackClient
from bot.demo.slack_emulator import SlackEmulator
from bot.drafting.drafts import edit_draft
from bot.exports import stream_export
from bot.publishing.accounts import describe_accounts
from bot.publishing.bluesky import facets_for, new_tid
from bot.publishing.publish import DRAFT_PUBLISHED
from handlers.render.drafts import APPROVE, DRAFT_REPLY
from handlers.render.publishing import PUBLISH, RETRY_PUBLISH
from models import Draft, Mention, Publication, transaction, utcnow
from models.publications import FAILED, PUBLISHED
from tests.bluesky_server import FakeBluesky
from tests.conftest import APPROVER, BYSTANDER, DRAFTER, LEAD, make_test_plan
from tests.fixtures_drafts import (
    WarRoom,
    action_ids,
    count,
    draft_message,
    events_of,
    message_text,
    open_war_room,
    wait_for_draft,
    wait_until,
)
from tests.mastodon_server import FakeMastodon

MASTODON_TOKEN = "mastodon-secret-token-do-not-leak"
BLUESKY_PASSWORD = "abcd-efgh-ijkl-mnop"
HANDLE = "acmeair.bsky.social"
COMPLAINT = "3 hours stuck at Gatwick and not a word from Acme Air. Where is my bag?"


@pytest.fixture
def mastodon() -> Iterator[FakeMastodon]:
    with FakeMastodon() as server:
        server.add_account("acmeair", MASTODON_TOKEN)
        yield server


@pytest.fixture
def bluesky() -> Iterator[FakeBluesky]:
    with FakeBluesky() as server:
        server.add_account(HANDLE, BLUESKY_PASSWORD)
        yield server


@pytest.fixture
def plan(mastodon: FakeMastodon, bluesky: FakeBluesky, monkeypatch: pytest.MonkeyPatch) -> Plan:
    monkeypatch.setenv("TEST_MASTODON_TOKEN", MASTODON_TOKEN)
    monkeypatch.setenv("TEST_BLUESKY_PASSWORD", BLUESKY_PASSWORD)
    return make_test_plan(publishing=Publishing(
        timeout_seconds=1.0,
        mastodon=MastodonAccount(instance=mastodon.base_url, token_env="TEST_MASTODON_TOKEN"),
        bluesky=BlueskyAccount(handle=HANDLE, password_env="TEST_BLUESKY_PASSWORD", pds=bluesky.base_url),
    ))


@pytest.fixture
def room(runtime: Runtime, emulator: SlackEmulator) -> WarRoom:
    return open_war_room(runtime, emulator)


def store_mention(runtime: Runtime, platform: str, external_id: str, url: str, text: str = COMPLAINT) -> int:
    with transaction(runtime.sessions) as session:
        mention = Mention(platform=platform, external_id=external_id, text=text, url=url, author="angry",
                          created_at=utcnow(), sentiment_label="negative", sentiment_score=-0.7)
        session.add(mention)
        session.flush()
        return mention.id


def approved_draft(slack: SlackClient, runtime: Runtime, emulator: SlackEmulator, room: WarRoom, platform: str,
                   mention_id: int | None = None, text: str | None = None, button: str | None = PUBLISH) -> Draft:
    """A reply drafted (template; edited to `text` by the drafter), approved by the approver, its message
    showing `button`."""
    if mention_id is not None:
        slack.block_action(DRAFT_REPLY, value=str(mention_id), user_id=DRAFTER, channel_id=room.channel_id,
                           message={"type": "message", "ts": "1700000000.000100", "blocks": []})
    else:
        slack.command(f"draft {platform} {COMPLAINT}", user_id=DRAFTER, channel_id=room.channel_id)
    draft = wait_for_draft(runtime, room.incident_id, "pending")
    emulator.wait_for(lambda emu: APPROVE in action_ids(draft_message(emu, draft)))
    revision = draft.revision
    if text is not None:
        with transaction(runtime.sessions) as session:
            edited = edit_draft(session, draft.id, DRAFTER, text, draft.revision)
        assert edited.ok and edited.draft is not None
        revision = edited.draft.revision
    slack.block_action(APPROVE, value=f"{draft.id}:{revision}", user_id=APPROVER, channel_id=room.channel_id,
                       message_ts=draft.slack_ts)
    approved = wait_for_draft(runtime, room.incident_id, "approved")
    if button is not None:
        emulator.wait_for(lambda emu: button in action_ids(draft_message(emu, approved)))
    return approved


def click(slack: SlackClient, action: str, draft: Draft, user_id: str = APPROVER) -> None:
    assert draft.channel_id
    response = slack.block_action(action, value=str(draft.id), user_id=user_id, channel_id=draft.channel_id,
                                  message_ts=draft.slack_ts)
    assert response.status_code == 200


def publication(runtime: Runtime, draft: Draft, status: str | tuple[str, ...]) -> Publication:
    wanted = (status,) if isinstance(status, str) else status

    def check() -> Publication | None:
        with transaction(runtime.sessions) as session:
            row = session.query(Publication).filter_by(draft_id=draft.id).one_or_none()
            return row if row is not None and row.status in wanted else None

    return wait_until(check, 30.0, f"a publication in {wanted}")


def shown(emulator: SlackEmulator, draft: Draft, words: str) -> dict[str, Any]:
    return emulator.wait_for(lambda emu: words in message_text(draft_message(emu, draft)) and draft_message(emu, draft))


def export_json(runtime: Runtime, incident_id: int) -> str:
    with transaction(runtime.sessions) as session:
        return "".join(stream_export(session, incident_id, "json", runtime.plan, {}))


# ----------------------------------------------------------------------------------- Mastodon


def test_mastodon_reply_is_posted_verbatim_once_and_linked_everywhere(
    slack: SlackClient, runtime: Runtime, emulator: SlackEmulator, room: WarRoom, mastodon: FakeMastodon,
) -> None:
    original = mastodon.add_status(COMPLAINT, username="angry")
    mention_id = store_mention(runtime, "mastodon", original["id"], original["url"])
    draft = approved_draft(slack, runtime, emulator, room, "mastodon", mention_id)

    click(slack, PUBLISH, draft)
    done = publication(runtime, draft, PUBLISHED)

    posts = mastodon.posts_by("acmeair")
    assert len(posts) == 1
    assert posts[0]["in_reply_to_id"] == original["id"]
    [call] = mastodon.calls_to("POST", "/api/v1/statuses")
    assert call.form["status"] == draft.final_text  # byte for byte
    assert call.headers["idempotency-key"] == done.idempotency_key
    assert call.headers["authorization"] == f"Bearer {MASTODON_TOKEN}"
    assert done.url == posts[0]["url"] and done.requested_by == APPROVER

    message = shown(emulator, draft, "Published")
    assert PUBLISH not in action_ids(message) and done.url in message_text(message)
    [event] = events_of(runtime, room.incident_id, DRAFT_PUBLISHED)
    assert event.actor == APPROVER and event.data["url"] == done.url
    document = json.loads(export_json(runtime, room.incident_id))
    [row] = document["sections"]["publications"]["rows"]
    assert row["link"] == done.url and row["status"] == PUBLISHED and row["text"] == draft.final_text
    assert MASTODON_TOKEN not in json.dumps(document) and "TEST_MASTODON_TOKEN" not in json.dumps(document)
    assert emulator.errors == []


def test_a_remote_mastodon_status_is_answered_through_our_instance(
    slack: SlackClient, runtime: Runtime, emulator: SlackEmulator, room: WarRoom, mastodon: FakeMastodon,
) -> None:
    original = mastodon.add_status(COMPLAINT, username="angry")
    original["url"] = "https://other.example/@angry/998877"  # known to our instance as a federated copy
    mention_id = store_mention(runtime, "mastodon", "998877", original["url"])  # the id on its own instance
    draft = approved_draft(slack, runtime, emulator, room, "mastodon", mention_id)
    click(slack, PUBLISH, draft)
    publication(runtime, draft, PUBLISHED)
    [search] = mastodon.calls_to("GET", "/api/v2/search")
    assert search.query["q"] == [original["url"]]
    assert search.query["resolve"] == ["1"]  # Mastodon.py sends True as 1
    [post] = mastodon.posts_by("acmeair")
    assert post["in_reply_to_id"] == original["id"]


def test_mastodon_new_post_when_the_draft_answers_no_mastodon_post(
    slack: SlackClient, runtime: Runtime, emulator: SlackEmulator, room: WarRoom, mastodon: FakeMastodon,
) -> None:
    draft = approved_draft(slack, runtime, emulator, room, "mastodon")
    click(slack, PUBLISH, draft, user_id=LEAD)
    publication(runtime, draft, PUBLISHED)
    [post] = mastodon.posts_by("acmeair")
    assert post["in_reply_to_id"] is None


def test_a_bystander_is_refused_privately_and_nothing_is_posted(
    slack: SlackClient, runtime: Runtime, emulator: SlackEmulator, room: WarRoom, mastodon: FakeMastodon,
) -> None:
    draft = approved_draft(slack, runtime, emulator, room, "mastodon")
    click(slack, PUBLISH, draft, user_id=BYSTANDER)
    told = emulator.wait_for(lambda emu: emu.ephemerals(user=BYSTANDER))
    assert "Only the incident's approver or lead may publish" in told[-1]["text"]
    assert count(runtime, Publication) == 0 and mastodon.posts_by("acmeair") == []
    assert PUBLISH in action_ids(draft_message(emulator, draft))


def test_twenty_concurrent_publish_clicks_post_once(
    slack: SlackClient, runtime: Runtime, emulator: SlackEmulator, room: WarRoom, mastodon: FakeMastodon,
) -> None:
    draft = approved_draft(slack, runtime, emulator, room, "mastodon")
    clickers = [threading.Thread(target=click, args=(slack, PUBLISH, draft, (APPROVER, LEAD)[i % 2]))
                for i in range(20)]
    for thread in clickers:
        thread.start()
    for thread in clickers:
        thread.join()
    publication(runtime, draft, PUBLISHED)
    emulator.wait_for(lambda emu: len(emu.ephemerals(user=APPROVER)) + len(emu.ephemerals(user=LEAD)) == 19,
                      timeout=60)
    assert len(mastodon.posts_by("acmeair")) == 1
    assert len(mastodon.calls_to("POST", "/api/v1/statuses")) == 1
    assert count(runtime, Publication) == 1
    assert len(events_of(runtime, room.incident_id, DRAFT_PUBLISHED)) == 1


@pytest.mark.parametrize("fault", ["slow_after_store", "drop_after_store"])
def test_mastodon_stored_the_post_but_did_not_answer_so_it_is_found_not_posted_again(
    slack: SlackClient, runtime: Runtime, emulator: SlackEmulator, room: WarRoom, mastodon: FakeMastodon, fault: str,
) -> None:
    draft = approved_draft(slack, runtime, emulator, room, "mastodon")
    mastodon.slow_seconds = 3.0  # past the plan's 1 s timeout
    mastodon.fail_next(fault)
    click(slack, PUBLISH, draft)
    done = publication(runtime, draft, PUBLISHED)
    [post] = mastodon.posts_by("acmeair")
    assert done.url == post["url"]
    assert len(mastodon.calls_to("POST", "/api/v1/statuses")) == 1
    assert any(c.path.endswith("/statuses") and c.method == "GET" for c in mastodon.calls)  # looked up
    click(slack, PUBLISH, draft)  # a later click is told, not posted
    told = emulator.wait_for(lambda emu: emu.ephemerals(user=APPROVER))
    assert "already published" in told[-1]["text"]
    assert len(mastodon.posts_by("acmeair")) == 1


def test_each_mastodon_refusal_is_shown_with_its_reason(
    slack: SlackClient, runtime: Runtime, emulator: SlackEmulator, room: WarRoom, mastodon: FakeMastodon,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    draft = approved_draft(slack, runtime, emulator, room, "mastodon")
    mastodon.fail_next("unauthorized")
    click(slack, PUBLISH, draft)
    publication(runtime, draft, FAILED)
    message = shown(emulator, draft, "Not published")
    assert "The access token is invalid" in message_text(message) and "TEST_MASTODON_TOKEN" in message_text(message)
    assert RETRY_PUBLISH in action_ids(message)

    mastodon.fail_next("rate_limit")
    click(slack, RETRY_PUBLISH, draft)
    wait_until(lambda: publication(runtime, draft, FAILED).attempts == 2 or None, 30.0, "the second attempt")
    message = shown(emulator, draft, "rate-limiting")
    assert "Try again after" in message_text(message) and RETRY_PUBLISH in action_ids(message)
    with transaction(runtime.sessions) as session:
        row = session.query(Publication).filter_by(draft_id=draft.id).one()
        assert row.retry_after is not None and row.retry_after > utcnow()

    mastodon.char_limit = 40  # the instance allows less than the default 500
    click(slack, RETRY_PUBLISH, draft)
    wait_until(lambda: publication(runtime, draft, FAILED).attempts == 3 or None, 30.0, "the third attempt")
    message = shown(emulator, draft, "character limit of 40 exceeded")
    assert RETRY_PUBLISH not in action_ids(message)  # retrying the same text cannot help
    assert mastodon.posts_by("acmeair") == []
    assert "publishing draft" in caplog.text and MASTODON_TOKEN not in caplog.text
    assert all(MASTODON_TOKEN not in json.dumps(m) for m in emulator.messages(room.channel_id))


def test_a_deleted_mastodon_parent_is_a_refusal(
    slack: SlackClient, runtime: Runtime, emulator: SlackEmulator, room: WarRoom, mastodon: FakeMastodon,
) -> None:
    original = mastodon.add_status(COMPLAINT, username="angry")
    mention_id = store_mention(runtime, "mastodon", original["id"], original["url"])
    draft = approved_draft(slack, runtime, emulator, room, "mastodon", mention_id)
    mastodon.delete_status(original["id"])
    click(slack, PUBLISH, draft)
    publication(runtime, draft, FAILED)
    message = shown(emulator, draft, "Record not found")
    assert "gone" in message_text(message) and RETRY_PUBLISH not in action_ids(message)
    assert mastodon.posts_by("acmeair") == []


HOSTILE = 'We\'re sorry <3 & "thanks" — délai 🙏 <!channel>\n\nSee https://acmeair.example/help?a=1&b=2'


def test_special_text_is_posted_byte_for_byte_and_found_by_its_text_after_a_timeout(
    slack: SlackClient, runtime: Runtime, emulator: SlackEmulator, room: WarRoom, mastodon: FakeMastodon,
) -> None:
    draft = approved_draft(slack, runtime, emulator, room, "mastodon", text=HOSTILE)
    assert draft.final_text == HOSTILE
    mastodon.fail_next("slow_after_store")
    click(slack, PUBLISH, draft)
    publication(runtime, draft, PUBLISHED)
    [call] = mastodon.calls_to("POST", "/api/v1/statuses")
    assert call.form["status"] == HOSTILE
    assert len(mastodon.posts_by("acmeair")) == 1
    message = draft_message(emulator, draft)
    assert "<!channel>" not in message_text(message)  # the posted text stays inert in Slack


def test_over_the_limit_cannot_be_published(
    slack: SlackClient, runtime: Runtime, emulator: SlackEmulator, room: WarRoom, mastodon: FakeMastodon,
) -> None:
    draft = approved_draft(slack, runtime, emulator, room, "mastodon", text="x" * 501, button=None)
    message = shown(emulator, draft, "Over the Mastodon limit")
    assert PUBLISH not in action_ids(message)
    click(slack, PUBLISH, draft)  # a forged or stale click
    told = emulator.wait_for(lambda emu: emu.ephemerals(user=APPROVER))
    assert "over the Mastodon limit (500)" in told[-1]["text"]
    assert count(runtime, Publication) == 0 and mastodon.calls_to("POST", "/api/v1/statuses") == []


def test_a_worker_that_died_mid_call_is_resolved_by_looking_up_not_posting_again(
    slack: SlackClient, runtime: Runtime, emulator: SlackEmulator, room: WarRoom, mastodon: FakeMastodon,
) -> None:
    draft = approved_draft(slack, runtime, emulator, room, "mastodon")
    assert draft.final_text is not None
    started = utcnow() - timedelta(minutes=3)
    with transaction(runtime.sessions) as session:  # what a worker killed after its call leaves behind
        session.add(Publication(draft_id=draft.id, incident_id=room.incident_id, platform="mastodon",
                                account="acmeair", text=draft.final_text, idempotency_key="warroom-k",
                                status="publishing", attempts=1, retryable=False, requested_by=APPROVER,
                                requested_at=started, claimed_at=started))
    made = mastodon._store(mastodon.accounts[MASTODON_TOKEN], draft.final_text, None)  # and the post it made

    click(slack, PUBLISH, draft, user_id=LEAD)
    done = publication(runtime, draft, PUBLISHED)
    assert done.url == made["url"] and done.attempts == 2
    assert mastodon.calls_to("POST", "/api/v1/statuses") == [] and len(mastodon.posts_by("acmeair")) == 1


# ----------------------------------------------------------------------------------- Bluesky


def test_bluesky_post_carries_link_and_mention_facets(
    slack: SlackClient, runtime: Runtime, emulator: SlackEmulator, room: WarRoom, bluesky: FakeBluesky,
) -> None:
    agent = bluesky.add_account("agent.bsky.social", "-")
    text = "Désolé 🙏 @agent.bsky.social will help: https://acmeair.example/help"
    draft = approved_draft(slack, runtime, emulator, room, "bluesky", text=text)
    click(slack, PUBLISH, draft)
    publication(runtime, draft, PUBLISHED)
    [post] = bluesky.posts_by(HANDLE)
    assert post["value"]["text"] == text
    encoded = text.encode()
    spans = [(encoded[f["index"]["byteStart"]:f["index"]["byteEnd"]].decode(), f["features"][0])
             for f in post["value"]["facets"]]
    assert spans[0][0] == "@agent.bsky.social" and spans[0][1]["did"] == agent.did
    assert spans[1][0] == "https://acmeair.example/help" and spans[1][1]["uri"] == "https://acmeair.example/help"


def test_bluesky_reply_carries_root_and_parent(
    slack: SlackClient, runtime: Runtime, emulator: SlackEmulator, room: WarRoom, bluesky: FakeBluesky,
) -> None:
    root = bluesky.add_post("first.bsky.social", "Anyone else stuck at Gatwick?")
    ref = {"uri": root["uri"], "cid": root["cid"]}
    parent = bluesky.add_post("angry.bsky.social", COMPLAINT, reply_to={"root": ref, "parent": ref})
    rkey = parent["uri"].rsplit("/", 1)[-1]
    mention_id = store_mention(runtime, "bluesky", parent["uri"],
                               f"https://bsky.app/profile/angry.bsky.social/post/{rkey}")
    draft = approved_draft(slack, runtime, emulator, room, "bluesky", mention_id)

    click(slack, PUBLISH, draft)
    done = publication(runtime, draft, PUBLISHED)
    [post] = bluesky.posts_by(HANDLE)
    assert post["value"]["text"] == draft.final_text
    reply = {part: {"uri": strong["uri"], "cid": strong["cid"]} for part, strong in post["value"]["reply"].items()
             if part in ("root", "parent")}
    assert reply == {"root": ref, "parent": {"uri": parent["uri"], "cid": parent["cid"]}}
    assert post["uri"].endswith("/" + done.idempotency_key)  # created under the key recorded first
    assert done.url == f"https://bsky.app/profile/{HANDLE}/post/{done.idempotency_key}"
    assert done.url in message_text(shown(emulator, draft, "Published"))
    assert all(BLUESKY_PASSWORD not in json.dumps(c.params) for c in bluesky.calls)


@pytest.mark.parametrize("fault", ["drop_after_store", "slow_after_store"])
def test_bluesky_new_post_stored_but_unanswered_is_found_not_posted_again(
    slack: SlackClient, runtime: Runtime, emulator: SlackEmulator, room: WarRoom, bluesky: FakeBluesky, fault: str,
) -> None:
    draft = approved_draft(slack, runtime, emulator, room, "bluesky")
    bluesky.slow_seconds = 3.0  # past the plan's 1 s timeout
    bluesky.fail_next(fault)
    click(slack, PUBLISH, draft)
    done = publication(runtime, draft, PUBLISHED)
    [post] = bluesky.posts_by(HANDLE)
    assert "reply" not in post["value"] and post["uri"].endswith(done.idempotency_key)
    assert len(bluesky.calls_to("com.atproto.repo.createRecord")) == 1
    assert len(bluesky.calls_to("com.atproto.repo.getRecord")) == 1


def test_bluesky_refusals_rate_limit_then_retry_posts_once(
    slack: SlackClient, runtime: Runtime, emulator: SlackEmulator, room: WarRoom, bluesky: FakeBluesky,
) -> None:
    draft = approved_draft(slack, runtime, emulator, room, "bluesky")
    bluesky.fail_next("rate_limit", nsid="com.atproto.repo.createRecord")
    click(slack, PUBLISH, draft)
    publication(runtime, draft, FAILED)
    message = shown(emulator, draft, "RateLimitExceeded")
    assert "Try again after" in message_text(message) and RETRY_PUBLISH in action_ids(message)

    click(slack, RETRY_PUBLISH, draft, user_id=LEAD)
    publication(runtime, draft, PUBLISHED)
    assert len(bluesky.posts_by(HANDLE)) == 1
    assert len(bluesky.calls_to("com.atproto.repo.getRecord")) == 1  # looked up before posting again


def test_bluesky_wrong_app_password_and_deleted_parent(
    slack: SlackClient, runtime: Runtime, emulator: SlackEmulator, room: WarRoom, bluesky: FakeBluesky,
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    parent = bluesky.add_post("angry.bsky.social", COMPLAINT)
    mention_id = store_mention(runtime, "bluesky", parent["uri"], "https://bsky.app/profile/angry.bsky.social/post/x")
    draft = approved_draft(slack, runtime, emulator, room, "bluesky", mention_id)
    monkeypatch.setenv("TEST_BLUESKY_PASSWORD", "wrong-pass-word-1234")
    click(slack, PUBLISH, draft)
    publication(runtime, draft, FAILED)
    message = shown(emulator, draft, "Invalid identifier or password")
    assert RETRY_PUBLISH in action_ids(message) and "wrong-pass" not in message_text(message)

    monkeypatch.setenv("TEST_BLUESKY_PASSWORD", BLUESKY_PASSWORD)  # fixed where War Room runs: Retry works
    bluesky.delete(parent["uri"])
    click(slack, RETRY_PUBLISH, draft)
    wait_until(lambda: publication(runtime, draft, FAILED).attempts == 2 or None, 30.0, "the second attempt")
    message = shown(emulator, draft, "is gone")
    assert RETRY_PUBLISH not in action_ids(message)
    assert bluesky.posts_by(HANDLE) == []
    assert "publishing draft" in caplog.text
    assert BLUESKY_PASSWORD not in caplog.text and "wrong-pass-word-1234" not in caplog.text


# ----------------------------------------------------------------------------------- pure logic


def test_facets_use_utf8_byte_offsets_for_links_and_resolved_mentions() -> None:
    text = "Désolé 🙏 @acmeair.bsky.social: see https://acmeair.example/help, or acmeair.example/faq. @nobody.example"
    facets = facets_for(text, lambda handle: "did:plc:acme" if handle == "acmeair.bsky.social" else None)
    encoded = text.encode()
    spans = [(encoded[f.index.byte_start:f.index.byte_end].decode(), f.features[0]) for f in facets]
    assert [span for span, _ in spans] == ["@acmeair.bsky.social", "https://acmeair.example/help",
                                           "acmeair.example/faq"]
    assert spans[0][1].did == "did:plc:acme"
    assert spans[1][1].uri == "https://acmeair.example/help" and spans[2][1].uri == "https://acmeair.example/faq"


def test_record_keys_are_tids() -> None:
    key = new_tid(utcnow())
    assert len(key) == 13 and set(key) <= set("234567abcdefghijklmnopqrstuvwxyz") and key[0] in "234567abcdefghij"


def test_plan_check_lines_say_whether_variables_are_set_without_values(plan: Plan) -> None:
    lines = describe_accounts(plan, {"TEST_MASTODON_TOKEN": MASTODON_TOKEN})
    assert lines[0].endswith("credential in $TEST_MASTODON_TOKEN (set)")
    assert "$TEST_BLUESKY_PASSWORD (NOT SET" in lines[1]
    assert all(MASTODON_TOKEN not in line for line in lines)
    assert describe_accounts(make_test_plan())[0].startswith("publishing mastodon: no account")
