"""Drafts without an LLM (template drafts) and the human decision: signed requests into the running app,
the Slack emulator for what people see, the database for what was recorded."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update

from bot.background.runtime import Runtime
from bot.crisis import timeline
from bot.crisis.plan import Plan
from bot.demo.signed_slack import SlackClient
from bot.demo.slack_emulator import SlackEmulator
from bot.drafting.drafts import (
    GENERIC_HOLDING_STATEMENT,
    PLATFORMS,
    DraftInputError,
    DraftOutcome,
    DraftRequest,
    draft_request_key,
    edit_draft,
    parse_draft_args,
    platform_for,
    record_draft_result,
    request_draft,
    request_draft_once,
    review_concerns,
    template_reply,
)
from handlers.render.drafts import APPROVE, DRAFT_REPLY, EDIT, EDIT_VIEW, REGENERATE, REJECT, REJECT_VIEW
from models import Decision, Draft, DraftRevision, RoleAssignment, transaction, utcnow
from tests.conftest import APPROVER, BYSTANDER, DRAFTER, LEAD
from tests.fixtures_drafts import (
    FACTS,
    WarRoom,
    action_ids,
    add_mention,
    count,
    draft_message,
    drafts_of,
    events_of,
    message_text,
    open_war_room,
    shown_at,
    shown_reply,
    wait_for_draft,
    wait_until,
)

BUTTONS = [APPROVE, EDIT, REGENERATE, REJECT]
POST = "3 hours stuck at Gatwick and not a word from @acmeair. Where is my bag?"


@pytest.fixture
def room(runtime: Runtime, emulator: SlackEmulator) -> WarRoom:
    return open_war_room(runtime, emulator)


def request_template_draft(slack: SlackClient, runtime: Runtime, room: WarRoom, text: str = POST,
                           user_id: str = DRAFTER) -> Draft:
    response = slack.command(f"draft twitter {text}", user_id=user_id, channel_id=room.channel_id)
    assert response.status_code == 200
    draft = wait_for_draft(runtime, room.incident_id, "pending")
    assert slack.emulator is not None
    slack.emulator.wait_for(lambda emu: action_ids(draft_message(emu, draft)) == BUTTONS)
    return draft


# ----------------------------------------------------------------------------------- pure logic


def test_parse_draft_args_platforms_and_default() -> None:
    assert parse_draft_args("bluesky why so late") == (PLATFORMS["bluesky"], "why so late")
    assert parse_draft_args("Twitter: where is my bag")[0].key == "x"
    assert parse_draft_args("where is my bag") == (PLATFORMS["x"], "where is my bag")
    assert platform_for("IG") is PLATFORMS["instagram"]
    assert platform_for("myspace") is None
    with pytest.raises(DraftInputError, match="Say what to reply to"):
        parse_draft_args("mastodon")
    with pytest.raises(DraftInputError):
        parse_draft_args("   ")


def test_platform_limits_table() -> None:
    limits = {key: platform.limit for key, platform in PLATFORMS.items()}
    assert limits["x"] == 280 and limits["bluesky"] == 300
    assert limits["mastodon"] == 500 and limits["threads"] == 500
    assert limits["instagram"] == 2200 and limits["linkedin"] == 3000
    assert max(limits.values()) <= 3000  # a draft always fits Slack's text input for editing


@pytest.mark.parametrize("platform", sorted(PLATFORMS))
def test_template_reply_fits_every_platform(platform: str, plan: Plan) -> None:
    limit = PLATFORMS[platform].limit
    for playbook in plan.playbooks.values():
        result = template_reply(playbook.holding_statement, FACTS, plan.tone.sign_off, limit)
        assert 0 < len(result.text) <= limit
        assert result.source == "template" and result.model is None


def test_template_reply_adds_facts_and_sign_off_that_fit() -> None:
    result = template_reply(None, ("The fault was fixed at 14:00",), "– Acme Air team", 500)
    assert result.text.startswith(GENERIC_HOLDING_STATEMENT)
    assert "The fault was fixed at 14:00." in result.text
    assert result.text.endswith("– Acme Air team")
    short = template_reply(None, ("The fault was fixed at 14:00",), "– Acme Air team", 150)
    assert len(short.text) <= 150 and "14:00" not in short.text


def test_review_concerns_flags_length_and_avoided_words() -> None:
    assert review_concerns("We hear you.", 280, ["unfortunately"]) == []
    concerns = review_concerns("Unfortunately we apologise for any  inconvenience. " * 8, 280,
                               ["unfortunately", "any inconvenience", "synergy"])
    assert any("over the 280-character limit" in concern for concern in concerns)
    assert any("“unfortunately”" in c and "“any inconvenience”" in c and "synergy" not in c for c in concerns)
    assert review_concerns("Fortunately, it's fixed.", 280, ["unfortunately"]) == []


# ----------------------------------------------------------------------------------- template drafts


def test_draft_without_llm_is_a_labelled_template(slack: SlackClient, runtime: Runtime,
                                                  emulator: SlackEmulator, room: WarRoom, plan: Plan) -> None:
    draft = request_template_draft(slack, runtime, room)

    assert draft.source == "template" and draft.platform == "x" and draft.attempts == 1
    assert draft.text is not None and len(draft.text) <= 280
    assert draft.text.startswith(" ".join(plan.playbooks["outage"].holding_statement.split())[:40])
    assert draft.request == POST and draft.requested_by == DRAFTER
    # The placeholder came first, and was turned into the draft.
    first_post = emulator.calls_to("chat.postMessage")[0]
    assert "Drafting a reply for X" in first_post.args["text"]
    message = draft_message(emulator, draft)
    shown = message_text(message)
    assert "Template draft" in shown and f"{len(draft.text)}/280" in shown
    assert "Where is my bag?" in shown
    assert action_ids(message) == BUTTONS
    assert len(events_of(runtime, room.incident_id, timeline.DRAFT_REQUESTED)) == 1
    assert len(events_of(runtime, room.incident_id, timeline.DRAFT_READY)) == 1
    assert count(runtime, DraftRevision, draft_id=draft.id) == 1
    assert emulator.errors == []


def test_template_without_playbook_uses_a_generic_statement(slack: SlackClient, runtime: Runtime,
                                                           emulator: SlackEmulator) -> None:
    room = open_war_room(runtime, emulator, playbook=None, facts=())
    draft = request_template_draft(slack, runtime, room)
    assert draft.text is not None and draft.text.startswith(GENERIC_HOLDING_STATEMENT)


def test_draft_command_without_text_says_what_is_missing(slack: SlackClient, runtime: Runtime,
                                                         emulator: SlackEmulator, room: WarRoom) -> None:
    slack.command("draft bluesky", user_id=DRAFTER, channel_id=room.channel_id)
    answer = emulator.wait_for(lambda emu: emu.ephemerals(user=DRAFTER))[-1]
    assert "Say what to reply to" in answer["text"]
    assert "/crisis draft [platform] <what to reply to>" in message_text(answer)
    assert drafts_of(runtime, room.incident_id) == []


# ----------------------------------------------------------------------------------- decisions


def test_approver_approves_once_and_the_message_shows_it(slack: SlackClient, runtime: Runtime,
                                                        emulator: SlackEmulator, room: WarRoom) -> None:
    draft = request_template_draft(slack, runtime, room)
    slack.block_action(APPROVE, user_id=APPROVER, channel_id=room.channel_id)

    approved = wait_for_draft(runtime, room.incident_id, "approved")
    assert approved.decided_by == APPROVER and approved.decided_at is not None
    assert approved.final_text == draft.text
    with transaction(runtime.sessions) as session:
        decisions = session.query(Decision).filter_by(incident_id=room.incident_id).all()
    assert [(d.kind, d.decided_by) for d in decisions] == [("draft", APPROVER)]
    assert draft.text in decisions[0].text
    events = events_of(runtime, room.incident_id, timeline.DRAFT_APPROVED)
    assert [(e.actor, e.data["final_text"]) for e in events] == [(APPROVER, draft.text)]

    message = emulator.wait_for(lambda emu: "Approved" in message_text(draft_message(emu, approved))
                                and draft_message(emu, approved))
    assert f"<@{APPROVER}>" in message_text(message) and "<!date^" in message_text(message)
    assert action_ids(message) == []
    assert emulator.errors == []


def test_bystander_cannot_approve_or_reject(slack: SlackClient, runtime: Runtime, emulator: SlackEmulator,
                                            room: WarRoom) -> None:
    draft = request_template_draft(slack, runtime, room)
    slack.block_action(APPROVE, user_id=BYSTANDER, channel_id=room.channel_id)
    told = emulator.wait_for(lambda emu: emu.ephemerals(user=BYSTANDER))
    assert "Only the incident's approver or lead may approve" in told[-1]["text"]

    slack.block_action(REJECT, user_id=BYSTANDER, channel_id=room.channel_id)
    told = emulator.wait_for(lambda emu: len(emu.ephemerals(user=BYSTANDER)) == 2
                             and emu.ephemerals(user=BYSTANDER))
    assert "may reject" in told[-1]["text"]
    assert emulator.opened_views == []
    assert drafts_of(runtime, room.incident_id)[-1].status == "pending"
    assert count(runtime, Decision) == 0
    assert events_of(runtime, room.incident_id, timeline.DRAFT_APPROVED) == []
    # Nobody else saw the refusal; the channel message still offers the buttons.
    assert action_ids(draft_message(emulator, draft)) == BUTTONS


def test_twenty_simultaneous_approvals_record_one_decision(slack: SlackClient, runtime: Runtime,
                                                          emulator: SlackEmulator, room: WarRoom) -> None:
    draft = request_template_draft(slack, runtime, room)
    message = draft_message(emulator, draft)  # every click comes from the message as it was shown
    start = threading.Barrier(20)
    statuses: list[int] = []

    def click(user_id: str) -> None:
        start.wait()
        statuses.append(slack.block_action(APPROVE, user_id=user_id,
                                           channel_id=room.channel_id, message=dict(message)).status_code)

    clickers = [threading.Thread(target=click, args=(APPROVER if n % 2 else LEAD,)) for n in range(20)]
    for thread in clickers:
        thread.start()
    for thread in clickers:
        thread.join(timeout=30)

    assert statuses == [200] * 20
    decided = wait_for_draft(runtime, room.incident_id, "approved")
    refused = emulator.wait_for(lambda emu: len(emu.ephemerals(channel=room.channel_id)) == 19
                                and emu.ephemerals(channel=room.channel_id), timeout=15)
    assert count(runtime, Decision, incident_id=room.incident_id) == 1
    assert len(events_of(runtime, room.incident_id, timeline.DRAFT_APPROVED)) == 1
    assert decided.decided_by in (APPROVER, LEAD)
    assert all(f"already approved by <@{decided.decided_by}>" in e["text"] for e in refused)
    assert len(emulator.calls_to("chat.update")) >= 1
    final = emulator.wait_for(lambda emu: "Approved" in message_text(draft_message(emu, decided))
                              and draft_message(emu, decided))
    assert action_ids(final) == []
    assert emulator.errors == []


def test_reject_requires_a_reason(slack: SlackClient, runtime: Runtime, emulator: SlackEmulator,
                                  room: WarRoom) -> None:
    draft = request_template_draft(slack, runtime, room)
    on_approvers_screen = draft_message(emulator, draft)
    slack.block_action(REJECT, user_id=LEAD, channel_id=room.channel_id)
    opened = emulator.wait_for(lambda emu: emu.opened_views)[-1]
    stored = emulator.views[opened["view_id"]]
    assert stored["callback_id"] == REJECT_VIEW and stored["private_metadata"] == f"{draft.id}:1"

    empty = slack.view_submission(REJECT_VIEW, {"reason": {"reason": "   "}}, user_id=LEAD)
    assert empty.status_code == 200
    assert json.loads(empty.text) == {"response_action": "errors",
                                      "errors": {"reason": "Say why the draft is rejected."}}
    assert drafts_of(runtime, room.incident_id)[-1].status == "pending"

    reason = "Too defensive; lead with the meal vouchers. <!channel>"
    assert slack.view_submission(REJECT_VIEW, {"reason": {"reason": reason}}, user_id=LEAD).status_code == 200
    rejected = wait_for_draft(runtime, room.incident_id, "rejected")
    assert rejected.reason == reason and rejected.decided_by == LEAD and rejected.final_text is None
    events = events_of(runtime, room.incident_id, timeline.DRAFT_REJECTED)
    assert [e.data["reason"] for e in events] == [reason]
    shown = emulator.wait_for(lambda emu: "Rejected" in message_text(draft_message(emu, rejected))
                              and message_text(draft_message(emu, rejected)))
    assert "lead with the meal vouchers" in shown and "<!channel>" not in shown
    # A late approval (from the message as it was before the rejection) is refused and says who decided first.
    slack.block_action(APPROVE, user_id=APPROVER, channel_id=room.channel_id, message=on_approvers_screen)
    told = emulator.wait_for(lambda emu: emu.ephemerals(user=APPROVER))
    assert f"already rejected by <@{LEAD}>" in told[-1]["text"]
    assert emulator.errors == []


def test_edit_keeps_a_revision_and_is_what_gets_approved(slack: SlackClient, runtime: Runtime,
                                                        emulator: SlackEmulator, room: WarRoom) -> None:
    draft = request_template_draft(slack, runtime, room)
    slack.block_action(EDIT, user_id=DRAFTER, channel_id=room.channel_id)
    opened = emulator.wait_for(lambda emu: emu.opened_views)[-1]
    stored = emulator.views[opened["view_id"]]
    assert stored["callback_id"] == EDIT_VIEW
    assert stored["blocks"][1]["element"]["initial_value"] == draft.text

    edited = "Unfortunately your flight was delayed. We're sorry: claim a voucher at acmeair.example/help."
    slack.view_submission(EDIT_VIEW, {"text": {"text": edited}}, user_id=DRAFTER)
    wait_until(lambda: drafts_of(runtime, room.incident_id)[-1].text == edited, what="the edit")
    with transaction(runtime.sessions) as session:
        revisions = session.query(DraftRevision).filter_by(draft_id=draft.id).order_by(DraftRevision.id).all()
    assert [(r.kind, r.author, r.text) for r in revisions] == [
        ("template", "template", draft.text), ("edit", DRAFTER, edited)]
    assert [e.actor for e in events_of(runtime, room.incident_id, timeline.DRAFT_EDITED)] == [DRAFTER]
    shown = emulator.wait_for(lambda emu: edited in message_text(draft_message(emu, draft))
                              and message_text(draft_message(emu, draft)))
    assert f"{len(edited)}/280" in shown and "“unfortunately”" in shown and f"edited by <@{DRAFTER}>" in shown

    # Someone without the drafter or lead role cannot edit.
    slack.block_action(EDIT, user_id=APPROVER, channel_id=room.channel_id)
    told = emulator.wait_for(lambda emu: emu.ephemerals(user=APPROVER))
    assert "may edit" in told[-1]["text"] and len(emulator.opened_views) == 1

    slack.block_action(APPROVE, user_id=APPROVER, channel_id=room.channel_id)
    approved = wait_for_draft(runtime, room.incident_id, "approved")
    assert approved.final_text == edited
    emulator.wait_for(lambda emu: "Approved" in message_text(draft_message(emu, approved)))
    assert emulator.errors == []


def test_regenerate_supersedes_the_old_draft(slack: SlackClient, runtime: Runtime, emulator: SlackEmulator,
                                             room: WarRoom) -> None:
    draft = request_template_draft(slack, runtime, room)
    on_approvers_screen = draft_message(emulator, draft)
    slack.block_action(REGENERATE, user_id=BYSTANDER, channel_id=room.channel_id)
    assert "may regenerate" in emulator.wait_for(lambda emu: emu.ephemerals(user=BYSTANDER))[-1]["text"]

    slack.block_action(REGENERATE, user_id=LEAD, channel_id=room.channel_id)
    wait_until(lambda: len(drafts_of(runtime, room.incident_id)) == 2, what="a second draft")
    new = wait_for_draft(runtime, room.incident_id, "pending")
    old = drafts_of(runtime, room.incident_id)[0]
    assert old.status == "superseded" and old.superseded_by == new.id
    assert new.request == old.request and new.platform == old.platform and new.requested_by == LEAD
    assert new.slack_ts != old.slack_ts
    events = events_of(runtime, room.incident_id, timeline.DRAFT_REGENERATED)
    assert [(e.actor, e.data) for e in events] == [(LEAD, {"draft_id": new.id, "previous_draft_id": old.id})]
    old_message = emulator.wait_for(lambda emu: "Superseded" in message_text(draft_message(emu, old))
                                    and draft_message(emu, old))
    assert action_ids(old_message) == []
    emulator.wait_for(lambda emu: action_ids(draft_message(emu, new)) == BUTTONS)
    # The superseded draft can no longer be approved (a click from the message as it was before).
    slack.block_action(APPROVE, user_id=APPROVER, channel_id=room.channel_id, message=on_approvers_screen)
    told = emulator.wait_for(lambda emu: emu.ephemerals(user=APPROVER))
    assert "replaced by a newer draft" in told[-1]["text"]
    assert emulator.errors == []


def test_draft_reply_button_on_a_mention(slack: SlackClient, runtime: Runtime, emulator: SlackEmulator,
                                         room: WarRoom) -> None:
    text = "<!channel> @acmeair lost my bag again, never flying with you <@ULEAD01>"
    mention_id = add_mention(runtime, platform="bluesky", text=text, url="https://bsky.app/profile/x/post/1")
    digest = {"type": "message", "ts": "1700000000.000100", "user": emulator.bot_user_id, "text": "digest",
              "blocks": [{"type": "actions", "block_id": "m", "elements": [
                  {"type": "button", "action_id": DRAFT_REPLY, "value": str(mention_id),
                   "text": {"type": "plain_text", "text": "Draft reply"}}]}]}
    slack.block_action(DRAFT_REPLY, value=str(mention_id), user_id=DRAFTER, channel_id=room.channel_id,
                       message=digest)

    draft = wait_for_draft(runtime, room.incident_id, "pending")
    emulator.wait_for(lambda emu: action_ids(draft_message(emu, draft)) == BUTTONS)
    assert draft.mention_id == mention_id and draft.platform == "bluesky"
    assert draft.request == text and draft.reply_to_url == "https://bsky.app/profile/x/post/1"
    assert draft.text is not None and len(draft.text) <= 300
    shown = message_text(draft_message(emulator, draft))
    assert "/300" in shown and "&lt;!channel&gt;" in shown and "<!channel>" not in shown
    assert "&lt;@ULEAD01&gt;" in shown  # a post can't ping anyone
    assert emulator.errors == []


def test_draft_reply_outside_an_incident_channel_is_refused(slack: SlackClient, runtime: Runtime,
                                                            emulator: SlackEmulator) -> None:
    mention_id = add_mention(runtime, text="hello")
    channel_id = emulator.add_channel("comms-alerts", [DRAFTER])
    slack.block_action(DRAFT_REPLY, value=str(mention_id), user_id=DRAFTER, channel_id=channel_id,
                       message={"type": "message", "ts": "1700000000.000200", "text": "spike", "blocks": []})
    told = emulator.wait_for(lambda emu: emu.ephemerals(user=DRAFTER))
    assert "works in an incident channel" in told[-1]["text"]
    with transaction(runtime.sessions) as session:
        assert session.query(Draft).count() == 0


# ----------------------------------------------------------------------------------- double submissions


def digest_with_button(emulator: SlackEmulator, mention_id: int) -> dict[str, object]:
    return {"type": "message", "ts": "1700000000.000300", "user": emulator.bot_user_id, "text": "digest",
            "blocks": [{"type": "actions", "block_id": "m", "elements": [
                {"type": "button", "action_id": DRAFT_REPLY, "value": str(mention_id),
                 "text": {"type": "plain_text", "text": "Draft reply"}}]}]}


def told_already_drafting(emulator: SlackEmulator, user_id: str) -> list[str]:
    texts = [str(e["text"]) for e in emulator.ephemerals(user=user_id)]
    texts += [str(payload.get("text", "")) for _, payload in emulator.responses]
    return [text for text in texts if "Already drafting this" in text]


def test_a_double_clicked_draft_reply_makes_one_draft(slack: SlackClient, runtime: Runtime,
                                                      emulator: SlackEmulator, room: WarRoom) -> None:
    mention_id = add_mention(runtime, text="@acmeair where is my bag?", url="https://bsky.app/profile/x/post/2")
    digest = digest_with_button(emulator, mention_id)
    start = threading.Barrier(2)
    statuses: list[int] = []

    def click() -> None:
        start.wait()  # both clicks of the double click land together, from the same message
        statuses.append(slack.block_action(DRAFT_REPLY, value=str(mention_id), user_id=DRAFTER,
                                           channel_id=room.channel_id, message=dict(digest)).status_code)

    clicks = [threading.Thread(target=click) for _ in range(2)]
    for thread in clicks:
        thread.start()
    for thread in clicks:
        thread.join(timeout=30)

    assert statuses == [200, 200]
    draft = wait_for_draft(runtime, room.incident_id, "pending")
    told = emulator.wait_for(lambda emu: told_already_drafting(emu, DRAFTER), timeout=10)
    assert len(drafts_of(runtime, room.incident_id)) == 1
    assert len(events_of(runtime, room.incident_id, timeline.DRAFT_REQUESTED)) == 1
    assert draft.request_key  # the claim that settles races between processes
    # The repeat points at the one draft's message.
    link = emulator.wait_for(lambda emu: emu.calls_to("chat.getPermalink"))[-1]
    assert link.args["message_ts"] == draft.slack_ts
    assert f"|draft #{draft.id}>" in told[-1] and "slack.com/archives/" in told[-1]
    assert len(told) == 1
    assert emulator.errors == []


def test_the_same_draft_command_sent_twice_quickly_makes_one_draft(
        slack: SlackClient, runtime: Runtime, emulator: SlackEmulator, room: WarRoom) -> None:
    first = slack.command(f"draft twitter {POST}", user_id=DRAFTER, channel_id=room.channel_id)
    again = slack.command(f"draft  Twitter {POST.upper()}  ", user_id=DRAFTER, channel_id=room.channel_id)
    assert (first.status_code, again.status_code) == (200, 200)

    draft = wait_for_draft(runtime, room.incident_id, "pending")
    emulator.wait_for(lambda emu: told_already_drafting(emu, DRAFTER), timeout=10)
    assert len(drafts_of(runtime, room.incident_id)) == 1
    # Someone else asking for the same reply, or a different reply, is a new request.
    slack.command(f"draft twitter {POST}", user_id=LEAD, channel_id=room.channel_id)
    slack.command(f"draft mastodon {POST}", user_id=DRAFTER, channel_id=room.channel_id)
    wait_until(lambda: len(drafts_of(runtime, room.incident_id)) == 3, what="two more drafts")
    assert draft.id == drafts_of(runtime, room.incident_id)[0].id
    assert emulator.errors == []


def test_a_deliberate_repeat_after_30_seconds_makes_a_second_draft(
        slack: SlackClient, runtime: Runtime, emulator: SlackEmulator, room: WarRoom) -> None:
    mention_id = add_mention(runtime, text="@acmeair still no bag", url="https://bsky.app/profile/x/post/3")
    digest = digest_with_button(emulator, mention_id)
    slack.block_action(DRAFT_REPLY, value=str(mention_id), user_id=DRAFTER, channel_id=room.channel_id,
                       message=dict(digest))
    first = wait_for_draft(runtime, room.incident_id, "pending")
    with transaction(runtime.sessions) as session:  # the first request was made 31 seconds ago
        session.execute(update(Draft).where(Draft.id == first.id)
                        .values(requested_at=first.requested_at - timedelta(seconds=31)))

    slack.block_action(DRAFT_REPLY, value=str(mention_id), user_id=DRAFTER, channel_id=room.channel_id,
                       message=dict(digest))
    second = wait_until(lambda: len(drafts_of(runtime, room.incident_id)) == 2
                        and wait_for_draft(runtime, room.incident_id, "pending", index=1), what="a second draft")
    earlier = drafts_of(runtime, room.incident_id)[0]
    assert second.id != first.id and second.mention_id == mention_id == earlier.mention_id
    # The newest request holds the key; the older one gave it up.
    assert second.request_key == first.request_key and earlier.request_key is None
    assert told_already_drafting(emulator, DRAFTER) == []
    assert emulator.errors == []


def test_concurrent_identical_requests_record_one_draft(runtime: Runtime, room: WarRoom) -> None:
    """Straight into the domain, many threads at once: the unique key settles the race on both databases."""
    start = threading.Barrier(8)
    results: list[DraftRequest] = []

    def ask() -> None:
        start.wait()
        results.append(request_draft_once(runtime.sessions, incident_id=room.incident_id,
                                          platform=PLATFORMS["x"], request=POST, requested_by=DRAFTER))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert len(results) == 8
    assert sorted(result.duplicate for result in results) == [False] + [True] * 7
    assert len({result.draft.id for result in results}) == 1
    assert len(drafts_of(runtime, room.incident_id)) == 1
    assert len(events_of(runtime, room.incident_id, timeline.DRAFT_REQUESTED)) == 1


def test_request_key_separates_what_should_be_separate() -> None:
    x, bluesky = PLATFORMS["x"], PLATFORMS["bluesky"]
    key = draft_request_key(1, DRAFTER, x, "Where is  my BAG?")
    assert key == draft_request_key(1, DRAFTER, x, " where is my bag? ")
    assert len(key) <= 120
    assert len({key, draft_request_key(2, DRAFTER, x, "where is my bag?"),
                draft_request_key(1, LEAD, x, "where is my bag?"),
                draft_request_key(1, DRAFTER, bluesky, "where is my bag?"),
                draft_request_key(1, DRAFTER, x, "where is my suitcase?"),
                draft_request_key(1, DRAFTER, x, "where is my bag?", mention_id=7),
                draft_request_key(1, DRAFTER, x, "where is my bag?", mention_id=8)}) == 7


# ----------------------------------------------------------------------------------- approve what was shown


def open_form(slack: SlackClient, emulator: SlackEmulator, action_id: str, message: dict[str, object],
              user_id: str, channel_id: str) -> dict[str, Any]:
    """Click Edit or Reject on `message` (as that user's screen shows it) and return the form it opened."""
    before = len(emulator.opened_views)
    slack.block_action(action_id, user_id=user_id, channel_id=channel_id, message=dict(message))
    opened = emulator.wait_for(lambda emu: len(emu.opened_views) > before and emu.opened_views[-1])
    return dict(emulator.views[opened["view_id"]])


def edit_to(slack: SlackClient, emulator: SlackEmulator, draft: Draft, message: dict[str, Any], text: str,
            user_id: str = DRAFTER) -> dict[str, Any]:
    """Edit the draft from `message` (as that user's screen shows it); returns the message once it shows the
    new text."""
    assert draft.channel_id is not None
    form = open_form(slack, emulator, EDIT, message, user_id, draft.channel_id)
    slack.view_submission(EDIT_VIEW, {"text": {"text": text}}, user_id=user_id, view=form)
    return emulator.wait_for(lambda emu: shown_reply(draft_message(emu, draft)) == text
                             and draft_message(emu, draft), timeout=10)


def refused_as_changed(emulator: SlackEmulator, user_id: str, revision: int, how_many: int = 1) -> dict[str, Any]:
    told = emulator.wait_for(lambda emu: len(emu.ephemerals(user=user_id)) >= how_many
                             and emu.ephemerals(user=user_id))[-1]
    assert f"changed since you saw it — review revision {revision}" in told["text"], told["text"]
    return told


def test_an_approval_of_an_older_revision_is_refused_and_the_message_refreshed(
        slack: SlackClient, runtime: Runtime, emulator: SlackEmulator, room: WarRoom) -> None:
    draft = request_template_draft(slack, runtime, room)
    on_approvers_screen = draft_message(emulator, draft)
    edited = "We're sorry for the wait at Gatwick. Meal vouchers: acmeair.example/help – Acme Air team"
    edit_to(slack, emulator, draft, on_approvers_screen, edited)  # saved a moment before the approver clicks

    updates = len(emulator.calls_to("chat.update"))
    slack.block_action(APPROVE, user_id=APPROVER, channel_id=room.channel_id, message=dict(on_approvers_screen))
    refused_as_changed(emulator, APPROVER, 2)
    emulator.wait_for(lambda emu: len(emu.calls_to("chat.update")) > updates)  # the message is refreshed
    assert drafts_of(runtime, room.incident_id)[-1].status == "pending"
    assert count(runtime, Decision) == 0
    assert events_of(runtime, room.incident_id, timeline.DRAFT_APPROVED) == []
    assert emulator.ephemerals(user=LEAD) == emulator.ephemerals(user=DRAFTER) == []  # told privately

    refreshed = shown_at(emulator, draft, 2)
    assert shown_reply(refreshed) == edited and "revision 2" in message_text(refreshed)
    slack.block_action(APPROVE, user_id=APPROVER, channel_id=room.channel_id, message=dict(refreshed))
    approved = wait_for_draft(runtime, room.incident_id, "approved")
    assert approved.final_text == edited and approved.decided_by == APPROVER
    events = events_of(runtime, room.incident_id, timeline.DRAFT_APPROVED)
    assert [(e.data["revision"], e.data["final_text"]) for e in events] == [(2, edited)]
    assert emulator.errors == []


def test_the_approved_text_is_byte_for_byte_the_text_shown(
        slack: SlackClient, runtime: Runtime, emulator: SlackEmulator, room: WarRoom) -> None:
    draft = request_template_draft(slack, runtime, room)
    # Spaces doubled and before line ends, emoji with skin tone and joiners, a flag, Slack's control
    # characters and mrkdwn markers: all of it is the reply.
    typed = ("Sorry  for the wait 🙏🏽 — café.   \n\n👩‍✈️ Crew & <gate 12> *now* boarding_by_hand_ `ok`   \n"
             "Updates every 30 min 🇬🇧 – Acme Air team")
    on_approvers_screen = edit_to(slack, emulator, draft, draft_message(emulator, draft), typed)
    # The lead saves a look-alike a moment before the approver clicks: a decomposed é, another skin tone.
    look_alike = typed.replace("café", "cafe\u0301").replace("🙏🏽", "🙏🏾")
    edit_to(slack, emulator, draft, on_approvers_screen, look_alike, user_id=LEAD)

    slack.block_action(APPROVE, user_id=APPROVER, channel_id=room.channel_id, message=dict(on_approvers_screen))
    refused_as_changed(emulator, APPROVER, 3)  # never the look-alike in place of what was shown
    shown = shown_at(emulator, draft, 3)
    slack.block_action(APPROVE, user_id=APPROVER, channel_id=room.channel_id, message=dict(shown))
    approved = wait_for_draft(runtime, room.incident_id, "approved")
    assert approved.final_text is not None
    assert approved.final_text.encode("utf-8") == shown_reply(shown).encode("utf-8") == look_alike.encode("utf-8")
    [event] = events_of(runtime, room.incident_id, timeline.DRAFT_APPROVED)
    assert event.data["final_text"] == look_alike and event.data["revision"] == 3
    with transaction(runtime.sessions) as session:
        assert session.query(Decision).one().text.endswith(look_alike)
    assert emulator.errors == []


def test_a_reject_of_an_older_revision_is_refused_and_the_reason_given_back(
        slack: SlackClient, runtime: Runtime, emulator: SlackEmulator, room: WarRoom) -> None:
    draft = request_template_draft(slack, runtime, room)
    on_leads_screen = draft_message(emulator, draft)
    form = open_form(slack, emulator, REJECT, on_leads_screen, LEAD, room.channel_id)
    edit_to(slack, emulator, draft, on_leads_screen, "We're on it: bags are being loaded now. – Acme Air team")

    # The form was opened on revision 1; the draft is at revision 2 when it is submitted.
    reason = "Too defensive; lead with the meal vouchers."
    slack.view_submission(REJECT_VIEW, {"reason": {"reason": reason}}, user_id=LEAD, view=form)
    told = refused_as_changed(emulator, LEAD, 2)
    assert reason in message_text(told)  # what they typed is not lost
    assert form["private_metadata"] == f"{draft.id}:1"
    # A Reject click on the old message opens no form at all.
    views = len(emulator.opened_views)
    slack.block_action(REJECT, user_id=LEAD, channel_id=room.channel_id, message=dict(on_leads_screen))
    refused_as_changed(emulator, LEAD, 2, how_many=2)
    assert len(emulator.opened_views) == views
    assert drafts_of(runtime, room.incident_id)[-1].status == "pending"
    assert events_of(runtime, room.incident_id, timeline.DRAFT_REJECTED) == []
    assert emulator.errors == []


def test_two_edits_from_the_same_revision_one_wins_and_the_other_is_told(
        slack: SlackClient, runtime: Runtime, emulator: SlackEmulator, room: WarRoom) -> None:
    draft = request_template_draft(slack, runtime, room)
    seen = draft_message(emulator, draft)
    forms = {user: open_form(slack, emulator, EDIT, seen, user, room.channel_id) for user in (DRAFTER, LEAD)}
    texts = {DRAFTER: "The drafter's reply: we're sorry, vouchers at acmeair.example/help.",
             LEAD: "The lead's reply: bags arrive tonight; we'll update you here."}
    start = threading.Barrier(2)

    def save(user_id: str) -> None:
        start.wait()
        slack.view_submission(EDIT_VIEW, {"text": {"text": texts[user_id]}}, user_id=user_id, view=forms[user_id])

    savers = [threading.Thread(target=save, args=(user,)) for user in texts]
    for thread in savers:
        thread.start()
    for thread in savers:
        thread.join(timeout=30)

    told = emulator.wait_for(lambda emu: [u for u in texts if emu.ephemerals(user=u)], timeout=15)
    assert len(told) == 1
    loser = told[0]
    [winner] = [user for user in texts if user != loser]
    refusal = refused_as_changed(emulator, loser, 2)
    assert texts[loser] in message_text(refusal)
    final = wait_for_draft(runtime, room.incident_id, "pending")
    assert (final.text, final.revision) == (texts[winner], 2)
    assert count(runtime, DraftRevision, draft_id=draft.id) == 2
    assert [e.actor for e in events_of(runtime, room.incident_id, timeline.DRAFT_EDITED)] == [winner]
    assert shown_reply(shown_at(emulator, draft, 2)) == texts[winner]
    assert emulator.errors == []


def test_concurrent_edits_of_one_revision_save_exactly_one(runtime: Runtime, room: WarRoom) -> None:
    """Straight into the domain, eight edits from revision 1 at once: one is saved, seven are refused."""
    with transaction(runtime.sessions) as session:
        draft = request_draft(session, incident_id=room.incident_id, platform=PLATFORMS["x"], request=POST,
                              requested_by=DRAFTER)
        record_draft_result(session, draft.id, template_reply(None, FACTS, "", 280), ())
    start = threading.Barrier(8)
    outcomes: list[DraftOutcome] = []

    def edit(n: int) -> None:
        start.wait()
        with transaction(runtime.sessions) as session:
            outcomes.append(edit_draft(session, draft.id, LEAD if n % 2 else DRAFTER, f"Edit number {n}.", 1))

    editors = [threading.Thread(target=edit, args=(n,)) for n in range(8)]
    for thread in editors:
        thread.start()
    for thread in editors:
        thread.join(timeout=30)

    assert len(outcomes) == 8
    assert sorted(str(outcome.refusal) for outcome in outcomes) == ["None"] + ["stale"] * 7
    [saved] = [outcome for outcome in outcomes if outcome.ok]
    stored = drafts_of(runtime, room.incident_id)[-1]
    assert saved.draft is not None and (stored.text, stored.revision) == (saved.draft.text, 2)
    assert count(runtime, DraftRevision, draft_id=draft.id) == 2
    assert len(events_of(runtime, room.incident_id, timeline.DRAFT_EDITED)) == 1


# ----------------------------------------------------------------------------------- four eyes


def with_four_eyes(runtime: Runtime, on: bool = True) -> None:
    runtime.plan = Plan.model_validate(runtime.plan.model_dump() | {"approval": {"four_eyes": on}})


def test_four_eyes_the_requester_cannot_decide_while_someone_else_can(
        slack: SlackClient, runtime: Runtime, emulator: SlackEmulator, room: WarRoom) -> None:
    with_four_eyes(runtime)
    draft = request_template_draft(slack, runtime, room, user_id=LEAD)
    slack.block_action(APPROVE, user_id=LEAD, channel_id=room.channel_id)
    told = emulator.wait_for(lambda emu: emu.ephemerals(user=LEAD))[-1]["text"]
    assert "four eyes" in told and "(you) cannot approve" in told and f"<@{APPROVER}>" in told
    slack.block_action(REJECT, user_id=LEAD, channel_id=room.channel_id)
    told = emulator.wait_for(lambda emu: len(emu.ephemerals(user=LEAD)) == 2 and emu.ephemerals(user=LEAD))
    assert "four eyes" in told[-1]["text"] and "(you) cannot reject" in told[-1]["text"]
    assert emulator.opened_views == []
    assert drafts_of(runtime, room.incident_id)[-1].status == "pending"

    slack.block_action(APPROVE, user_id=APPROVER, channel_id=room.channel_id)
    approved = wait_for_draft(runtime, room.incident_id, "approved")
    assert approved.decided_by == APPROVER and approved.final_text == draft.text
    assert emulator.errors == []


def test_without_four_eyes_the_requester_may_approve(slack: SlackClient, runtime: Runtime,
                                                     emulator: SlackEmulator, room: WarRoom) -> None:
    with_four_eyes(runtime, on=False)
    draft = request_template_draft(slack, runtime, room, user_id=LEAD)
    slack.block_action(APPROVE, user_id=LEAD, channel_id=room.channel_id)
    approved = wait_for_draft(runtime, room.incident_id, "approved")
    assert approved.decided_by == LEAD and approved.final_text == draft.text


def test_four_eyes_the_last_editor_cannot_approve(slack: SlackClient, runtime: Runtime,
                                                  emulator: SlackEmulator, room: WarRoom) -> None:
    with_four_eyes(runtime)
    draft = request_template_draft(slack, runtime, room, user_id=DRAFTER)
    edited = "We're sorry. Vouchers at acmeair.example/help – Acme Air team"
    shown = edit_to(slack, emulator, draft, draft_message(emulator, draft), edited, user_id=LEAD)
    slack.block_action(APPROVE, user_id=LEAD, channel_id=room.channel_id, message=dict(shown))
    told = emulator.wait_for(lambda emu: emu.ephemerals(user=LEAD))[-1]["text"]
    assert "four eyes" in told and "current text" in told and f"<@{APPROVER}>" in told
    assert drafts_of(runtime, room.incident_id)[-1].status == "pending"

    slack.block_action(APPROVE, user_id=APPROVER, channel_id=room.channel_id, message=dict(shown))
    approved = wait_for_draft(runtime, room.incident_id, "approved")
    assert (approved.decided_by, approved.final_text) == (APPROVER, edited)


def test_four_eyes_with_nobody_else_to_decide_the_requester_may(slack: SlackClient, runtime: Runtime,
                                                                emulator: SlackEmulator, room: WarRoom) -> None:
    with_four_eyes(runtime)
    with transaction(runtime.sessions) as session:  # the approver has left the incident: only the lead decides
        session.execute(update(RoleAssignment).where(RoleAssignment.incident_id == room.incident_id,
                                                     RoleAssignment.role == "approver").values(ended_at=utcnow()))
    request_template_draft(slack, runtime, room, user_id=LEAD)
    slack.block_action(APPROVE, user_id=LEAD, channel_id=room.channel_id)
    assert wait_for_draft(runtime, room.incident_id, "approved").decided_by == LEAD
