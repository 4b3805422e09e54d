"""`/crisis open` and the *Open incident* form, end to end: signed requests in, emulator and database out."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import update

from bot.background.runtime import Runtime
from bot.background.scheduler import Scheduler
from bot.crisis import timeline
from bot.crisis.incidents import STALE_OPEN
from bot.crisis.plan import ChannelSettings
from bot.demo.signed_slack import SlackClient
from bot.demo.slack_emulator import SlackEmulator
from handlers.slack_gateway import job_gateway
from models import Incident, RoleAssignment, transaction, utcnow
from models.incidents import OPEN, OPENING
from tests.conftest import APPROVER, BYSTANDER, DRAFTER, LEAD, LIAISON, MONITOR, make_test_plan
from tests.fixtures_lifecycle import (
    all_text,
    events,
    incident,
    incidents,
    open_incident,
    rows,
    wait_until,
)


class CountingScheduler(Scheduler):
    """The real scheduler, never started, counting the syncs the lifecycle asks for."""

    def __init__(self, runtime: Runtime) -> None:
        super().__init__(runtime, job_gateway(runtime))
        self.syncs = 0

    def sync(self) -> None:
        self.syncs += 1
        super().sync()


def _responses_to(emulator: SlackEmulator, user_id: str) -> list[str]:
    return [e["text"] for e in emulator.ephemerals(user=user_id)]


def test_open_sets_up_the_whole_war_room(
    slack: SlackClient, emulator: SlackEmulator, runtime: Runtime
) -> None:
    runtime.scheduler = scheduler = CountingScheduler(runtime)
    opened = open_incident(slack, emulator, runtime, "sev2 outage Flights delayed at LHR")

    row = incident(runtime, opened.id)
    day = row.opened_at.astimezone(runtime.plan.zone)
    assert opened.channel_name == f"crisis-{day:%Y%m%d}-flights-delayed-at-lhr"
    assert (row.severity, row.playbook, row.status, row.open_error) == ("sev2", "outage", OPEN, None)
    assert row.next_digest_at == row.opened_at + timedelta(minutes=30)
    assert scheduler.syncs == 1

    # Everyone in one invite: the opener and the plan's people, the user group resolved, never the bot.
    invites = emulator.calls_to("conversations.invite")
    assert len(invites) == 1
    assert invites[0].args["users"].split(",") == [LEAD, APPROVER, DRAFTER, MONITOR]
    assert emulator.calls_to("usergroups.users.list")[0].args["usergroup"] == "SMONITORS"
    channel = emulator.channels[opened.channel_id]
    assert channel.members == {emulator.bot_user_id, LEAD, APPROVER, DRAFTER, MONITOR}
    assert not channel.is_private
    assert channel.topic == f"SEV2 Major · Lead: <@{LEAD}> · Status: open"
    assert channel.purpose == "Flights delayed at LHR — Service outage playbook"

    # The brief: posted, pinned, with the checklist and a Claim button on the one empty role.
    brief = emulator.messages(opened.channel_id)[0]
    assert channel.pins == [brief["ts"]] == [row.brief_ts]
    text = all_text(brief)
    assert "Flights delayed at LHR" in text and "Confirm scope and cause with operations" in text
    claims = [b["accessory"]["action_id"] for b in brief["blocks"] if b.get("accessory")]
    assert claims == ["claim_role:liaison"]
    assert emulator.errors == []

    # The database: roles from the plan (lead = opener), every step on the timeline.
    holders = {(r.role, r.user_id) for r in rows(runtime, RoleAssignment, incident_id=opened.id)}
    assert holders == {("lead", LEAD), ("approver", APPROVER), ("drafter", DRAFTER), ("monitor", MONITOR)}
    kinds = [e.kind for e in events(runtime, opened.id)]
    # The open's own events end with "ready"; the playbook's tasks (and the statement target) follow.
    ready = kinds.index(timeline.INCIDENT_READY)
    assert kinds[0] == timeline.INCIDENT_OPENED and set(kinds[ready + 1:]) == {"statement.target", "task.planned"}
    steps = [e.data["step"] for e in events(runtime, opened.id, timeline.INCIDENT_OPEN_STEP)]
    assert steps == ["channel", "invite", "topic", "brief", "pin"]
    assert all(e.actor == LEAD for e in events(runtime, opened.id))
    wait_until(lambda: any("Incident opened" in t for t in _responses_to(emulator, LEAD)))


def test_severity_defaults_to_the_playbook_or_sev3(
    slack: SlackClient, emulator: SlackEmulator, runtime: Runtime
) -> None:
    safety = open_incident(slack, emulator, runtime, "safety Passenger hurt")
    plain = open_incident(slack, emulator, runtime, "Something odd")
    assert incident(runtime, safety.id).severity == "sev1"
    assert incident(runtime, plain.id).severity == "sev3"
    assert incident(runtime, plain.id).playbook is None


def test_a_taken_name_gets_a_suffix(slack: SlackClient, emulator: SlackEmulator, runtime: Runtime) -> None:
    from models import utcnow

    day = utcnow().astimezone(runtime.plan.zone)
    emulator.add_channel(f"crisis-{day:%Y%m%d}-flights-delayed")
    opened = open_incident(slack, emulator, runtime, "Flights delayed")
    assert opened.channel_name == f"crisis-{day:%Y%m%d}-flights-delayed-2"
    assert [c.args["name"] for c in emulator.calls_to("conversations.create")] == [
        f"crisis-{day:%Y%m%d}-flights-delayed",
        f"crisis-{day:%Y%m%d}-flights-delayed-2",
    ]
    assert emulator.errors == []


def test_rate_limits_during_an_open_are_waited_out(
    slack: SlackClient, emulator: SlackEmulator, runtime: Runtime
) -> None:
    emulator.rate_limit("conversations.create", times=2, retry_after=0)
    emulator.rate_limit("conversations.invite", times=1, retry_after=0)
    opened = open_incident(slack, emulator, runtime, "Flights delayed")
    assert len(emulator.calls_to("conversations.create")) == 3
    assert len(emulator.calls_to("conversations.invite")) == 2
    assert len(incidents(runtime)) == 1
    assert emulator.channels[opened.channel_id].pins


def test_a_failed_step_is_reported_and_the_same_open_resumes(
    slack: SlackClient, emulator: SlackEmulator, runtime: Runtime
) -> None:
    emulator.fail("conversations.setTopic", error="fatal_error")
    slack.command("open sev2 Flights delayed", user_id=LEAD)
    failed = wait_until(lambda: [r for r in incidents(runtime) if r.open_error], what="the open to fail")[0]
    assert failed.status == OPENING
    assert failed.open_error == "topic: Slack answered `fatal_error`"
    told = wait_until(
        lambda: [t for t in _responses_to(emulator, LEAD) if "stopped at the *topic* step" in t]
    )
    assert "fatal_error" in told[0]
    assert [e.data["step"] for e in events(runtime, failed.id, timeline.INCIDENT_OPEN_FAILED)] == ["topic"]

    # Same opener, same title (spacing and case aside): the half-open incident is finished, not duplicated.
    slack.command("open  flights DELAYED", user_id=LEAD)
    wait_until(lambda: incident(runtime, failed.id).status == OPEN, what="the resumed open")
    assert len(incidents(runtime)) == 1
    assert len(emulator.calls_to("conversations.create")) == 1
    assert len(emulator.calls_to("conversations.invite")) == 1
    row = incident(runtime, failed.id)
    assert row.open_error is None and row.channel_id == failed.channel_id
    assert emulator.channels[row.channel_id].topic.startswith("SEV2 Major")
    assert emulator.errors == []

    # Once open, the same open again just points to the room.
    slack.command("open Flights delayed", user_id=LEAD)
    wait_until(lambda: any("already opened this incident" in t for t in _responses_to(emulator, LEAD)))
    assert len(incidents(runtime)) == 1


def test_an_open_whose_process_died_is_taken_over_only_once_it_is_stale(
    slack: SlackClient, emulator: SlackEmulator, runtime: Runtime
) -> None:
    """A process killed mid-open records no error; a retry waits while the open may still be running,
    then finishes it, with no second incident and no second channel."""
    emulator.fail("conversations.setTopic", error="fatal_error")
    slack.command("open Flights delayed", user_id=LEAD)
    half = wait_until(lambda: [r for r in incidents(runtime) if r.open_error], what="the open to stop")[0]
    with transaction(runtime.sessions) as session:  # as if the process had died before recording the failure
        session.execute(
            update(Incident).where(Incident.id == half.id).values(open_error=None, open_attempt_at=utcnow())
        )

    slack.command("open Flights delayed", user_id=LEAD)
    wait_until(lambda: any("being opened right now" in t for t in _responses_to(emulator, LEAD)))
    assert incident(runtime, half.id).status == OPENING

    with transaction(runtime.sessions) as session:
        session.execute(update(Incident).where(Incident.id == half.id)
                        .values(open_attempt_at=utcnow() - STALE_OPEN - timedelta(seconds=1)))
    slack.command("open Flights delayed", user_id=LEAD)
    wait_until(lambda: incident(runtime, half.id).status == OPEN, what="the taken-over open")
    assert len(incidents(runtime)) == 1
    assert len(emulator.calls_to("conversations.create")) == 1
    steps = events(runtime, half.id, timeline.INCIDENT_OPEN_STEP)
    retry = [e for e in steps if e.data.get("step") == "retry"]
    assert [e.data["previous_error"] for e in retry] == ["the open stopped before finishing"]


def test_server_errors_beyond_the_retries_fail_the_step(
    slack: SlackClient, emulator: SlackEmulator, runtime: Runtime
) -> None:
    emulator.server_error("chat.postMessage", times=3)  # one try and two retries, all 500
    slack.command("open Flights delayed", user_id=LEAD)
    failed = wait_until(lambda: [r for r in incidents(runtime) if r.open_error], what="the open to fail")[0]
    assert failed.open_error is not None and failed.open_error.startswith("brief:")
    assert failed.brief_ts is None
    slack.command("open Flights delayed", user_id=LEAD)
    wait_until(lambda: incident(runtime, failed.id).status == OPEN, what="the resumed open")
    row = incident(runtime, failed.id)
    assert emulator.channels[row.channel_id].pins == [row.brief_ts]
    assert len(emulator.messages(row.channel_id)) == 1


def test_a_private_plan_opens_a_private_channel_led_by_the_plan_lead(
    slack: SlackClient, emulator: SlackEmulator, runtime: Runtime
) -> None:
    plan = make_test_plan(channel=ChannelSettings(prefix="war", private=True))
    roles = dict(plan.roles)
    roles["lead"] = roles["lead"].model_copy(update={"members": [LIAISON]})
    runtime.plan = plan.model_copy(update={"roles": roles})
    opened = open_incident(slack, emulator, runtime, "Flights delayed", user_id=BYSTANDER)
    assert opened.channel_name.startswith("war-")
    assert emulator.channels[opened.channel_id].is_private
    leads = rows(runtime, RoleAssignment, incident_id=opened.id, role="lead")
    assert [r.user_id for r in leads] == [LIAISON]
    assert {BYSTANDER, LIAISON} <= emulator.channels[opened.channel_id].members


def test_titles_are_escaped_and_names_kept_short(
    slack: SlackClient, emulator: SlackEmulator, runtime: Runtime
) -> None:
    title = "<!channel> " + "very long words " * 8
    opened = open_incident(slack, emulator, runtime, title.strip())
    assert len(opened.channel_name) <= 80
    brief = emulator.messages(opened.channel_id)[0]
    mrkdwn = [b["text"]["text"] for b in brief["blocks"] if b["type"] == "section"]
    assert all("<!channel>" not in text for text in mrkdwn)
    assert "<!channel>" not in brief["text"]
    assert emulator.errors == []


def test_wrong_open_arguments_are_explained(
    slack: SlackClient, emulator: SlackEmulator, runtime: Runtime
) -> None:
    slack.command("open sev7 Flights delayed", user_id=LEAD)
    told = wait_until(lambda: _responses_to(emulator, LEAD))
    assert "`sev7` is not a severity" in told[0]
    assert "/crisis open [sev1-4] [playbook] <title>" in all_text(emulator.ephemerals(user=LEAD)[0])
    assert incidents(runtime) == []


def test_no_title_opens_the_form_and_an_empty_title_is_refused_inline(
    slack: SlackClient, emulator: SlackEmulator, runtime: Runtime
) -> None:
    slack.command("open sev1 safety", user_id=LEAD)
    opened = wait_until(lambda: emulator.opened_views)
    view = opened[0]["view"]
    assert view["callback_id"] == "open_incident"
    severity = next(b for b in view["blocks"] if b["block_id"] == "severity")
    assert severity["element"]["initial_option"]["value"] == "sev1"
    playbook = next(b for b in view["blocks"] if b["block_id"] == "playbook")
    assert playbook["element"]["initial_option"]["value"] == "safety"

    response = slack.view_submission("open_incident", {"title": {"value": "   "}}, user_id=LEAD)
    assert response.status_code == 200
    assert response.json() == {"response_action": "errors", "errors": {"title": "Give the incident a title."}}
    assert incidents(runtime) == []

    response = slack.view_submission(
        "open_incident",
        {
            "title": {"value": "Passenger hurt at gate 4"},
            "severity": {"value": {"type": "static_select", "selected_option": {"value": "sev2"}}},
            "playbook": {"value": {"type": "static_select", "selected_option": {"value": "safety"}}},
            "description": {"value": "Video circulating on TikTok"},
        },
        user_id=LEAD,
    )
    assert response.status_code == 200 and response.text in ("", "{}")
    row = wait_until(lambda: [r for r in incidents(runtime) if r.status == OPEN])[0]
    assert (row.title, row.severity, row.playbook, row.description) == (
        "Passenger hurt at gate 4",
        "sev2",
        "safety",
        "Video circulating on TikTok",
    )
    # The form came from #general, where the bot is not a member: the answer comes by DM.
    wait_until(
        lambda: (
            emulator.dm_channel(LEAD)
            and any("Incident opened" in m["text"] for m in emulator.dm_channel(LEAD).messages)
        )
    )
    assert emulator.errors == []


def test_a_double_submitted_form_opens_one_incident(
    slack: SlackClient, emulator: SlackEmulator, runtime: Runtime
) -> None:
    values = {"title": {"value": "Flights delayed"}}
    first = slack.view_submission("open_incident", values, user_id=LEAD)
    second = slack.view_submission("open_incident", values, user_id=LEAD)
    assert first.status_code == second.status_code == 200
    wait_until(lambda: [r for r in incidents(runtime) if r.status == OPEN])
    wait_until(lambda: len(emulator.dm_channel(LEAD).messages if emulator.dm_channel(LEAD) else []) >= 2)
    assert len(incidents(runtime)) == 1
    assert len(emulator.calls_to("conversations.create")) == 1


def test_the_open_incident_button_prefills_the_form(
    slack: SlackClient, emulator: SlackEmulator, runtime: Runtime
) -> None:
    # The spike-alert engineer's button, in the alert channel, carrying what the alert knows.
    alerts = emulator.add_channel("comms-alerts", [LEAD])
    value = json.dumps({"title": "Spike: 'acme air lost my bag'", "severity": "sev2", "playbook": "outage"})
    runtime.slack.chat_postMessage(
        channel=alerts,
        text="Spike",
        blocks=[
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "action_id": "open_incident",
                        "value": value,
                        "text": {"type": "plain_text", "text": "Open incident"},
                    }
                ],
            }
        ],
    )
    slack.block_action("open_incident", user_id=LEAD, channel_id=alerts)
    view = wait_until(lambda: emulator.opened_views)[0]["view"]
    title = next(b for b in view["blocks"] if b["block_id"] == "title")
    assert title["element"]["initial_value"] == "Spike: 'acme air lost my bag'"
    assert json.loads(view["private_metadata"]) == {"channel": alerts}

    # Submitted from the alert channel: the opener hears back there.
    slack.view_submission(
        "open_incident",
        {
            "title": {"value": "Lost bags"},
            "severity": {"value": {"type": "static_select", "selected_option": {"value": "sev2"}}},
        },
        user_id=LEAD,
    )
    wait_until(
        lambda: any("Incident opened" in e["text"] for e in emulator.ephemerals(user=LEAD, channel=alerts))
    )
    assert emulator.errors == []


def test_the_home_button_with_no_value_opens_an_empty_form(
    slack: SlackClient, emulator: SlackEmulator, runtime: Runtime
) -> None:
    slack.block_action(
        "open_incident", value="", user_id=BYSTANDER, view={"type": "home", "blocks": [], "id": "VHOME1"}
    )
    view = wait_until(lambda: emulator.opened_views)[0]["view"]
    title = next(b for b in view["blocks"] if b["block_id"] == "title")
    assert "initial_value" not in title["element"]
    assert emulator.errors == []


def test_an_incident_row_is_all_there_is_before_slack_answers(runtime: Runtime) -> None:
    from bot.crisis.incidents import CREATED, IN_PROGRESS, start_open

    first = start_open(
        runtime.sessions, runtime.plan, opener=LEAD, title="Flights delayed", severity=None, playbook="outage"
    )
    again = start_open(
        runtime.sessions, runtime.plan, opener=LEAD, title="flights delayed", severity=None, playbook="outage"
    )
    assert (first.outcome, again.outcome) == (CREATED, IN_PROGRESS)
    assert again.incident_id == first.incident_id
    rows_now = rows(runtime, Incident)
    assert len(rows_now) == 1 and rows_now[0].request_key
