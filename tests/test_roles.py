"""Roles in the war room: `assign`, `roles`, and the brief's *Claim* buttons, end to end."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import update

from bot.background.runtime import Runtime
from bot.crisis import timeline
from bot.crisis.plan import Plan, Role
from bot.demo.signed_slack import SlackClient
from bot.demo.slack_emulator import SlackEmulator
from models import Job, RoleAssignment, transaction, utcnow
from tests.conftest import APPROVER, BYSTANDER, DRAFTER, LEAD, LIAISON, MONITOR, make_test_plan
from tests.fixtures_lifecycle import all_text, events, incident, open_incident, rows, wait_until


@pytest.fixture
def plan(request: pytest.FixtureRequest) -> Plan:
    """The test plan; `parametrize("plan", [{role: {field: value}}], indirect=True)` changes roles, validated
    as a plan file's would be."""
    base = make_test_plan()
    roles = dict(base.roles)
    for name, fields in getattr(request, "param", {}).items():
        roles[name] = Role.model_validate({**roles[name].model_dump(exclude_unset=True), **fields})
    return make_test_plan(roles=roles)


def _told(emulator: SlackEmulator, user_id: str, words: str) -> str:
    return wait_until(
        lambda: next((e["text"] for e in emulator.ephemerals(user=user_id) if words in e["text"]), None),
        what=f"an ephemeral saying {words!r}",
    )


def _brief(emulator: SlackEmulator, runtime: Runtime, incident_id: int, channel_id: str) -> dict[str, Any]:
    brief_ts = incident(runtime, incident_id).brief_ts
    return next(m for m in emulator.messages(channel_id) if m["ts"] == brief_ts)


def _claims(brief: dict[str, Any]) -> list[str]:
    return [b["accessory"]["action_id"] for b in brief["blocks"] if b.get("accessory")]


def _announced(emulator: SlackEmulator, channel_id: str, title: str) -> list[str]:
    return [m["text"] for m in emulator.messages(channel_id) if f"is now *{title}*" in m["text"]]


def _active(runtime: Runtime, incident_id: int, role: str) -> list[str]:
    return [
        r.user_id
        for r in rows(runtime, RoleAssignment, incident_id=incident_id, role=role)
        if r.ended_at is None
    ]


def test_assign_hands_a_role_over_and_keeps_the_history(
    slack: SlackClient, emulator: SlackEmulator, runtime: Runtime
) -> None:
    room = open_incident(slack, emulator, runtime)
    brief_ts = incident(runtime, room.id).brief_ts
    emulator.clear_calls()
    slack.command(f"assign approver <@{BYSTANDER}|bea>", user_id=LEAD, channel_id=room.channel_id)
    wait_until(lambda: any("is now *Approver*" in m["text"] for m in emulator.messages(room.channel_id)))

    history = rows(runtime, RoleAssignment, incident_id=room.id, role="approver")
    assert [(r.user_id, r.ended_by is not None) for r in history] == [(APPROVER, True), (BYSTANDER, False)]
    assert history[0].ended_at is not None and history[0].ended_by == LEAD
    assert history[1].assigned_by == LEAD
    # Invited (Bea was not in the room), told her job by DM, brief and topic follow.
    assert emulator.calls_to("conversations.invite")[0].args["users"] == BYSTANDER
    assert BYSTANDER in emulator.channels[room.channel_id].members
    dm = emulator.dm_channel(BYSTANDER)
    assert dm is not None and "Signs off every public statement" in all_text(dm.messages[0])
    update = emulator.calls_to("chat.update")[0]
    assert update.args["ts"] == brief_ts and f"<@{BYSTANDER}>" in str(update.args["blocks"])
    assert emulator.calls_to("conversations.setTopic")
    kinds = [
        (e.kind, e.data.get("user"))
        for e in events(runtime, room.id)
        if e.kind in (timeline.ROLE_ENDED, timeline.ROLE_ASSIGNED)
    ][-2:]
    assert kinds == [(timeline.ROLE_ENDED, APPROVER), (timeline.ROLE_ASSIGNED, BYSTANDER)]
    assert emulator.errors == []


def test_assigning_someone_already_in_the_room_skips_the_invite_error(
    slack: SlackClient, emulator: SlackEmulator, runtime: Runtime
) -> None:
    room = open_incident(slack, emulator, runtime)
    slack.command(f"assign liaison <@{MONITOR}>", user_id=LEAD, channel_id=room.channel_id)
    wait_until(lambda: _active(runtime, room.id, "liaison") == [MONITOR])
    wait_until(lambda: any("is now *Liaison*" in m["text"] for m in emulator.messages(room.channel_id)))
    assert emulator.ephemerals(user=LEAD, channel=room.channel_id) == []  # nothing went wrong to report


def test_unknown_role_lists_the_valid_ones(
    slack: SlackClient, emulator: SlackEmulator, runtime: Runtime
) -> None:
    room = open_incident(slack, emulator, runtime)
    slack.command(f"assign spokesperson <@{BYSTANDER}>", user_id=LEAD, channel_id=room.channel_id)
    text = _told(emulator, LEAD, "not a role")
    assert "`lead`, `monitor`, `drafter`, `approver`, `liaison`" in text


def test_wrong_assign_arguments_get_the_form(
    slack: SlackClient, emulator: SlackEmulator, runtime: Runtime
) -> None:
    room = open_incident(slack, emulator, runtime)
    slack.command("assign approver", user_id=LEAD, channel_id=room.channel_id)
    slack.command("assign approver bea", user_id=LEAD, channel_id=room.channel_id)
    _told(emulator, LEAD, "Name a role and a person")
    _told(emulator, LEAD, "`bea` is not a person")
    usage = [all_text(e) for e in emulator.ephemerals(user=LEAD, channel=room.channel_id)]
    assert all("/crisis assign <role> @user" in text for text in usage)


def test_only_the_lead_hands_on_the_lead_role(
    slack: SlackClient, emulator: SlackEmulator, runtime: Runtime
) -> None:
    room = open_incident(slack, emulator, runtime)
    slack.command(f"assign lead <@{APPROVER}>", user_id=APPROVER, channel_id=room.channel_id)
    _told(emulator, APPROVER, "Only the lead")
    assert _active(runtime, room.id, "lead") == [LEAD]

    slack.command(f"assign lead {LIAISON}", user_id=LEAD, channel_id=room.channel_id)
    wait_until(lambda: _active(runtime, room.id, "lead") == [LIAISON])
    wait_until(
        lambda: (
            emulator.channels[room.channel_id].topic == f"SEV3 Moderate · Lead: <@{LIAISON}> · Status: open"
        )
    )


def test_roles_lists_holders_and_empty_roles(
    slack: SlackClient, emulator: SlackEmulator, runtime: Runtime
) -> None:
    room = open_incident(slack, emulator, runtime)
    jobs_before = len(rows(runtime, Job))
    response = slack.command("roles", user_id=BYSTANDER, channel_id=room.channel_id)
    text = all_text(response.json())  # answered in the ack: a read queues no job
    assert len(rows(runtime, Job)) == jobs_before
    assert f"*Approver* (`approver`): <@{APPROVER}>" in text
    assert "Empty: `liaison`" in text


def test_claim_button_fills_an_empty_role_once(
    slack: SlackClient, emulator: SlackEmulator, runtime: Runtime
) -> None:
    room = open_incident(slack, emulator, runtime)
    slack.block_action("claim_role:liaison", user_id=LIAISON, channel_id=room.channel_id)
    wait_until(lambda: _active(runtime, room.id, "liaison") == [LIAISON])
    brief = wait_until(
        lambda: next(
            (
                m
                for m in emulator.messages(room.channel_id)
                if m.get("edited") and m["ts"] == incident(runtime, room.id).brief_ts
            ),
            None,
        )
    )
    assert not [b for b in brief["blocks"] if b.get("accessory")]  # no empty role left to claim
    assert f"<@{LIAISON}>" in all_text(brief)
    claimed = [e for e in events(runtime, room.id, timeline.ROLE_ASSIGNED) if e.data.get("claimed")]
    assert [(e.actor, e.data["role"]) for e in claimed] == [(LIAISON, "liaison")]

    # A second click on the (stale) button changes nothing and says who has it.
    slack.block_action(
        "claim_role:liaison",
        value=f"{room.id}:liaison",
        user_id=BYSTANDER,
        channel_id=room.channel_id,
        message_ts=brief["ts"],
    )
    assert "already taken" in _told(emulator, BYSTANDER, "already taken")
    assert _active(runtime, room.id, "liaison") == [LIAISON]
    assert emulator.errors == []


def test_assign_outside_an_incident_channel_says_where(
    slack: SlackClient, emulator: SlackEmulator, runtime: Runtime
) -> None:
    room = open_incident(slack, emulator, runtime)
    slack.command(f"assign approver <@{BYSTANDER}>", user_id=LEAD)
    text = _told(emulator, LEAD, "works in an incident channel")
    assert f"<#{room.channel_id}>" in text


# ---- sign-off roles: only the plan or the current lead fills them -------------------------------------


def test_only_the_lead_puts_someone_in_a_sign_off_role(
    slack: SlackClient, emulator: SlackEmulator, runtime: Runtime
) -> None:
    room = open_incident(slack, emulator, runtime)
    # A bystander naming themselves, and a non-lead naming someone else: both refused privately, naming the lead.
    slack.command(f"assign approver <@{BYSTANDER}>", user_id=BYSTANDER, channel_id=room.channel_id)
    mine = _told(emulator, BYSTANDER, "sign-off role")
    slack.command(f"assign approver <@{MONITOR}>", user_id=DRAFTER, channel_id=room.channel_id)
    theirs = _told(emulator, DRAFTER, "sign-off role")
    assert "yourself" in mine and f"<@{LEAD}>" in mine
    assert f"<@{LEAD}>" in theirs
    assert _active(runtime, room.id, "approver") == [APPROVER]
    assert _announced(emulator, room.channel_id, "Approver") == []
    assert not [e for e in events(runtime, room.id, timeline.ROLE_ASSIGNED) if e.actor in (BYSTANDER, DRAFTER)]

    # The lead may: someone else, then themselves.
    slack.command(f"assign approver <@{BYSTANDER}>", user_id=LEAD, channel_id=room.channel_id)
    wait_until(lambda: _active(runtime, room.id, "approver") == [BYSTANDER], what="the lead's assignment")
    slack.command(f"assign approver <@{LEAD}>", user_id=LEAD, channel_id=room.channel_id)
    wait_until(lambda: _active(runtime, room.id, "approver") == [LEAD], what="the lead naming themselves")
    assert emulator.errors == []


@pytest.mark.parametrize("plan", [{"approver": {"members": []}}], indirect=True)
def test_an_empty_sign_off_role_has_no_claim_button_and_a_forged_claim_is_refused(
    slack: SlackClient, emulator: SlackEmulator, runtime: Runtime
) -> None:
    room = open_incident(slack, emulator, runtime)
    brief = _brief(emulator, runtime, room.id, room.channel_id)
    assert _claims(brief) == ["claim_role:liaison"]
    approver_line = next(line for line in all_text(brief).splitlines() if "(`approver`)" in line)
    assert f"<@{LEAD}>" in approver_line  # says who fills it

    # A click Slack never showed: the action id and value of a Claim button, signed like a real click.
    slack.block_action(
        "claim_role:approver",
        value=f"{room.id}:approver",
        user_id=BYSTANDER,
        channel_id=room.channel_id,
        message_ts=brief["ts"],
    )
    assert f"<@{LEAD}>" in _told(emulator, BYSTANDER, "sign-off role")
    assert _active(runtime, room.id, "approver") == []
    assert _announced(emulator, room.channel_id, "Approver") == []

    # The ordinary role next to it is still claimed with a click.
    slack.block_action("claim_role:liaison", user_id=BYSTANDER, channel_id=room.channel_id)
    wait_until(lambda: _active(runtime, room.id, "liaison") == [BYSTANDER], what="the liaison claim")
    assert _active(runtime, room.id, "approver") == []


@pytest.mark.parametrize("plan", [{"liaison": {"signoff": True}}], indirect=True)
def test_a_role_the_plan_marks_signoff_is_filled_only_by_the_lead(
    slack: SlackClient, emulator: SlackEmulator, runtime: Runtime
) -> None:
    room = open_incident(slack, emulator, runtime)
    assert _claims(_brief(emulator, runtime, room.id, room.channel_id)) == []  # liaison: empty, but sign-off

    slack.command(f"assign liaison <@{BYSTANDER}>", user_id=BYSTANDER, channel_id=room.channel_id)
    assert f"<@{LEAD}>" in _told(emulator, BYSTANDER, "sign-off role")
    slack.block_action(
        "claim_role:liaison", value=f"{room.id}:liaison", user_id=MONITOR, channel_id=room.channel_id,
        message_ts=incident(runtime, room.id).brief_ts,
    )
    assert f"<@{LEAD}>" in _told(emulator, MONITOR, "sign-off role")
    assert _active(runtime, room.id, "liaison") == []

    # A role the plan leaves unmarked is still anyone's to take.
    slack.command(f"assign monitor <@{BYSTANDER}>", user_id=BYSTANDER, channel_id=room.channel_id)
    wait_until(lambda: _active(runtime, room.id, "monitor") == [BYSTANDER], what="the monitor self-assignment")
    slack.command(f"assign liaison <@{BYSTANDER}>", user_id=LEAD, channel_id=room.channel_id)
    wait_until(lambda: _active(runtime, room.id, "liaison") == [BYSTANDER], what="the lead's assignment")


def _end_the_lead(runtime: Runtime, incident_id: int) -> None:
    """Nobody leads: no command ends a lead without a successor, so the database is changed directly."""
    with transaction(runtime.sessions) as session:
        session.execute(
            update(RoleAssignment)
            .where(RoleAssignment.incident_id == incident_id, RoleAssignment.role == "lead")
            .values(ended_at=utcnow(), ended_by=LEAD)
        )


@pytest.mark.parametrize("plan", [{"lead": {"members": [LEAD]}}], indirect=True)
def test_with_nobody_leading_the_plans_lead_fills_sign_off_roles(
    slack: SlackClient, emulator: SlackEmulator, runtime: Runtime
) -> None:
    room = open_incident(slack, emulator, runtime, user_id=BYSTANDER)
    _end_the_lead(runtime, room.id)
    slack.command(f"assign lead <@{BYSTANDER}>", user_id=BYSTANDER, channel_id=room.channel_id)
    text = _told(emulator, BYSTANDER, "Nobody leads")
    assert f"the plan's lead, <@{LEAD}>" in text
    assert _active(runtime, room.id, "lead") == []

    slack.command(f"assign lead <@{MONITOR}>", user_id=LEAD, channel_id=room.channel_id)
    wait_until(lambda: _active(runtime, room.id, "lead") == [MONITOR], what="the plan's lead naming a lead")


def test_with_nobody_leading_and_no_lead_in_the_plan_nobody_fills_sign_off_roles(
    slack: SlackClient, emulator: SlackEmulator, runtime: Runtime
) -> None:
    room = open_incident(slack, emulator, runtime)
    _end_the_lead(runtime, room.id)
    for role in ("lead", "approver"):
        slack.command(f"assign {role} <@{LEAD}>", user_id=LEAD, channel_id=room.channel_id)

    def refusals() -> list[str]:
        return [e["text"] for e in emulator.ephemerals(user=LEAD) if "Nobody leads" in e["text"]]

    wait_until(lambda: len(refusals()) == 2, what="both refusals")
    assert all("`roles.lead.members`" in text for text in refusals())
    assert _active(runtime, room.id, "lead") == [] and _active(runtime, room.id, "approver") == [APPROVER]
