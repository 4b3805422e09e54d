"""Stakeholder updates without an LLM: `/crisis update` through signed requests, the template draft (labelled),
the approval gate (a bystander is refused), posting to the plan's stakeholder channel (joining a public one,
asking to be invited to a private one), the export, and the overdue-update reminder on the test's clock."""

from __future__ import annotations

import json
from datetime import timedelta

from bot.background.runtime import Runtime
from bot.background.scheduler import Scheduler
from bot.crisis.incidents import resolve_incident
from bot.crisis.plan import Approval
from bot.demo.signed_slack import SlackClient
from bot.demo.slack_emulator import SlackEmulator
from bot.drafting import updates
from bot.exports import stream_export
from bot.flows import updates as flows
from bot.infra.clock import ManualClock
from handlers.render.drafts import APPROVE, EDIT, REGENERATE, REJECT
from handlers.render.updates import POST_UPDATE, START_UPDATE
from handlers.slack_gateway import job_gateway
from models import Draft, RoleAssignment, StakeholderPost, UpdateReminder, transaction, utcnow
from tests.conftest import APPROVER, BYSTANDER, DRAFTER, LEAD
from tests.fixtures_drafts import (
    FACTS,
    WarRoom,
    action_ids,
    count,
    draft_message,
    drafts_of,
    events_of,
    message_text,
    open_war_room,
    wait_for_draft,
    wait_until,
)

BUTTONS = [APPROVE, EDIT, REGENERATE, REJECT]
STAKEHOLDERS = "comms-stakeholders"  # the bundled plan's stakeholder_channel is #comms-stakeholders


def request_update(slack: SlackClient, emulator: SlackEmulator, runtime: Runtime, room: WarRoom,
                   note: str = "") -> Draft:
    acked = slack.command(f"update {note}".strip(), user_id=DRAFTER, channel_id=room.channel_id)
    assert acked.status_code == 200 and not acked.content, acked.text
    draft = wait_for_draft(runtime, room.incident_id, "pending")
    emulator.wait_for(lambda emu: action_ids(draft_message(emu, draft)) == BUTTONS)
    return draft


def approve(slack: SlackClient, room: WarRoom, draft: Draft, user: str = APPROVER) -> None:
    """A click on *Approve* on the draft's message as it was shown with its buttons."""
    assert slack.emulator is not None
    message = {**draft_message(slack.emulator, draft)}
    message["blocks"] = next((m.get("blocks") for m in reversed([*(message.get("edits") or []), message])
                              if APPROVE in action_ids(m)), message.get("blocks"))
    slack.block_action(APPROVE, value=f"{draft.id}:{draft.revision}", user_id=user, channel_id=room.channel_id,
                       message=message)


def test_an_update_is_drafted_from_the_record_approved_and_posted_to_the_public_stakeholder_channel(
    slack: SlackClient, runtime: Runtime, emulator: SlackEmulator
) -> None:
    room = open_war_room(runtime, emulator)
    stakeholders = emulator.add_channel(STAKEHOLDERS, [LEAD], bot_member=False)  # public; the bot is not in it
    draft = request_update(slack, emulator, runtime, room, "Support needs the refund wording by 15:00")

    assert (draft.platform, draft.source, draft.requested_by) == ("stakeholder", "template", DRAFTER)
    assert draft.text is not None
    assert draft.text.startswith("Situation: Gatwick delays — sev2 (Major)")
    assert FACTS[1] in draft.text and "Support needs the refund wording by 15:00" in draft.text
    assert "\nWhat we are doing: " in draft.text and "\nNext update due: " in draft.text
    shown = message_text(draft_message(emulator, draft))
    assert "Stakeholder update" in shown and "Template update" in shown and "no LLM is configured" in shown

    # A bystander's click is refused privately, and nothing is posted.
    approve(slack, room, draft, user=BYSTANDER)
    told = emulator.wait_for(lambda emu: emu.ephemerals(user=BYSTANDER))[-1]["text"]
    assert "approver or lead" in told
    assert emulator.messages(stakeholders) == [] and count(runtime, StakeholderPost) == 0

    approve(slack, room, draft)
    posted = emulator.wait_for(lambda emu: emu.messages(stakeholders))
    assert len(posted) == 1 and "Situation: Gatwick delays" in message_text(posted[0])
    assert f"<@{APPROVER}>" in message_text(posted[0])
    assert emulator.bot_user_id in emulator.channels[stakeholders].members  # joined the public channel
    emulator.wait_for(lambda emu: any("was posted to" in message_text(m) for m in emu.messages(room.channel_id)))
    event = wait_until(lambda: events_of(runtime, room.incident_id, updates.UPDATE_POSTED), 5, "update.posted")
    assert event[0].data["approved_by"] == APPROVER and event[0].data["channel_id"] == stakeholders

    # A second approval click changes nothing and posts nothing more.
    approve(slack, room, draft)
    emulator.wait_for(lambda emu: "already approved" in emu.ephemerals(user=APPROVER)[-1]["text"])
    assert len(emulator.messages(stakeholders)) == 1

    with transaction(runtime.sessions) as session:
        document = json.loads("".join(stream_export(session, room.incident_id, "json", runtime.plan, {})))
    [row] = document["sections"]["stakeholder_updates"]["rows"]
    assert row["Approved by"] == APPROVER and row["Status"] == "approved" and row["Posted to"] == stakeholders
    assert row["Text"].startswith("Situation: Gatwick delays")


def test_a_private_stakeholder_channel_must_invite_the_bot_then_post_update_posts_it_once(
    slack: SlackClient, runtime: Runtime, emulator: SlackEmulator
) -> None:
    room = open_war_room(runtime, emulator)
    private = emulator.add_channel(STAKEHOLDERS, [LEAD], is_private=True, bot_member=False)
    draft = request_update(slack, emulator, runtime, room)
    approve(slack, room, draft)

    notice = emulator.wait_for(lambda emu: next(
        (m for m in emu.messages(room.channel_id) if POST_UPDATE in action_ids(m)), None))
    assert "not posted" in notice["text"] and "private channel" in notice["text"]
    assert "/invite @War Room" in notice["text"]
    assert emulator.messages(private) == []
    with transaction(runtime.sessions) as session:
        post = session.get(StakeholderPost, draft.id)
        assert post is not None and post.status == "failed"

    # Only the approver or lead may post it; after the invite, *Post update* posts it once.
    slack.block_action(POST_UPDATE, value=str(draft.id), user_id=BYSTANDER, channel_id=room.channel_id)
    told = emulator.wait_for(lambda emu: emu.ephemerals(user=BYSTANDER))[-1]["text"]
    assert "approver or lead" in told and emulator.messages(private) == []
    emulator.channels[private].members.add(emulator.bot_user_id)
    slack.block_action(POST_UPDATE, value=str(draft.id), user_id=LEAD, channel_id=room.channel_id)
    emulator.wait_for(lambda emu: emu.messages(private))
    slack.block_action(POST_UPDATE, value=str(draft.id), user_id=LEAD, channel_id=room.channel_id)
    emulator.wait_for(lambda emu: "already posted" in emu.ephemerals(user=LEAD)[-1]["text"])
    assert len(emulator.messages(private)) == 1


def test_an_overdue_update_reminds_the_lead_once_and_never_after_resolve(
    slack: SlackClient, runtime: Runtime, emulator: SlackEmulator, clock: ManualClock
) -> None:
    room = open_war_room(runtime, emulator)  # sev2: the bundled plan asks for an update every 60 minutes
    opened = clock.now()
    scheduler = Scheduler(runtime, job_gateway(runtime))
    assert "update-reminders" in [job.name for job in scheduler.periodic_jobs()]

    assert scheduler.remind_updates(opened + timedelta(minutes=59)) == 0
    assert scheduler.remind_updates(opened + timedelta(minutes=61)) == 1
    assert scheduler.remind_updates(opened + timedelta(minutes=75)) == 0  # once per due time
    reminders = [m for m in emulator.messages(room.channel_id) if START_UPDATE in action_ids(m)]
    assert len(reminders) == 1 and f"<@{LEAD}>" in reminders[0]["text"] and "overdue" in reminders[0]["text"]
    assert len(events_of(runtime, room.incident_id, updates.UPDATE_REMINDED)) == 1

    # The reminder's button starts `/crisis update`.
    slack.block_action(START_UPDATE, user_id=LEAD, channel_id=room.channel_id, message=reminders[0])
    draft = wait_for_draft(runtime, room.incident_id, "pending")
    assert draft.platform == "stakeholder" and draft.requested_by == LEAD

    with transaction(runtime.sessions) as session:
        resolve_incident(session, runtime.plan, room.incident_id, LEAD, "All flights back on time")
    assert scheduler.remind_updates(opened + timedelta(minutes=200)) == 0
    assert count(runtime, UpdateReminder) == 1

    # The export's coordination metrics count the update that went overdue.
    with transaction(runtime.sessions) as session:
        document = json.loads("".join(stream_export(session, room.incident_id, "json", runtime.plan, {})))
    metrics = document["sections"]["coordination_metrics"]
    assert metrics["updates_missed"] == 1
    assert {"metric": "Stakeholder updates missed", "value": "1",
            "against": "overdue for the severity's update cadence"} in metrics["rows"]


def test_an_update_follows_the_reply_rules_regenerate_four_eyes_and_no_stakeholder_channel(
    slack: SlackClient, runtime: Runtime, emulator: SlackEmulator
) -> None:
    runtime.plan = runtime.plan.model_copy(update={
        "approval": Approval(four_eyes=True), "stakeholder_channel": None})
    room = open_war_room(runtime, emulator)
    first = request_update(slack, emulator, runtime, room)

    # Regenerate supersedes it with a new update, drafted the same way.
    slack.block_action(REGENERATE, value=f"{first.id}:{first.revision}", user_id=DRAFTER, channel_id=room.channel_id,
                       message=dict(draft_message(emulator, first)))
    second = wait_for_draft(runtime, room.incident_id, "pending", index=1)
    emulator.wait_for(lambda emu: action_ids(draft_message(emu, second)) == BUTTONS)
    assert second.platform == "stakeholder" and second.text and second.text.startswith("Situation: ")
    assert [d.status for d in drafts_of(runtime, room.incident_id)] == ["superseded", "pending"]

    # Only sign-off roles approve; and with four eyes, the drafter who regenerated it cannot sign it off even
    # as an approver while another approver can.
    approve(slack, room, second, user=DRAFTER)
    assert "approver or lead" in emulator.wait_for(lambda emu: emu.ephemerals(user=DRAFTER))[-1]["text"]
    with transaction(runtime.sessions) as session:
        session.add(RoleAssignment(incident_id=room.incident_id, role="approver", user_id=DRAFTER,
                                   assigned_by=LEAD, assigned_at=utcnow()))
    approve(slack, room, second, user=DRAFTER)
    assert "four eyes" in emulator.wait_for(
        lambda emu: len(emu.ephemerals(user=DRAFTER)) > 1 and emu.ephemerals(user=DRAFTER))[-1]["text"]
    approve(slack, room, second, user=APPROVER)
    assert wait_for_draft(runtime, room.incident_id, "approved", index=1).decided_by == APPROVER

    # With no stakeholder_channel in the plan, the room is told it was recorded but posted nowhere.
    notice = emulator.wait_for(lambda emu: next(
        (m for m in emu.messages(room.channel_id) if POST_UPDATE in action_ids(m)), None))
    assert "names no `stakeholder_channel`" in notice["text"]


def test_a_post_taken_over_from_a_worker_that_died_is_looked_up_before_posting_again(
    slack: SlackClient, runtime: Runtime, emulator: SlackEmulator, clock: ManualClock
) -> None:
    """A worker that died after Slack accepted the post but before recording it leaves a `posting` claim;
    whoever takes it over finds the post by its marker and records it, instead of posting a second copy."""
    room = open_war_room(runtime, emulator)
    stakeholders = emulator.add_channel(STAKEHOLDERS, [LEAD])
    draft = request_update(slack, emulator, runtime, room)
    approve(slack, room, draft)
    [posted] = emulator.wait_for(lambda emu: emu.messages(stakeholders))
    wait_until(lambda: events_of(runtime, room.incident_id, updates.UPDATE_POSTED), 5, "update.posted")
    assert posted["metadata"]["event_payload"] == {"key": str(draft.id)}

    def crash_after_posting() -> None:
        with transaction(runtime.sessions) as session:
            post = session.get(StakeholderPost, draft.id)
            assert post is not None
            post.status, post.ts, post.posted_at, post.claimed_by = "posting", None, None, None

    crash_after_posting()
    gateway = job_gateway(runtime)
    assert flows.post_update(runtime, gateway, draft.id) is None  # a fresh claim: someone may be posting now
    clock.advance(updates.STALE_CLAIM + timedelta(seconds=1))
    assert flows.post_update(runtime, gateway, draft.id) == posted["ts"]  # found, not posted again
    assert len(emulator.messages(stakeholders)) == 1
    with transaction(runtime.sessions) as session:
        post = session.get(StakeholderPost, draft.id)
        assert post is not None and (post.status, post.ts) == ("posted", posted["ts"])

    # Died before Slack had it: nothing to find, so it is posted (once).
    emulator.channels[stakeholders].messages.clear()
    crash_after_posting()
    clock.advance(updates.STALE_CLAIM + timedelta(seconds=1))
    assert flows.post_update(runtime, gateway, draft.id) is not None
    assert len(emulator.messages(stakeholders)) == 1
