"""Follow-ups (command, and the button on decisions and rumours), the resolve hand-over of open tasks, the
export's task sections and metrics, archiving resolved channels, and the App Home's own tasks."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from typing import Any

from bot.background.runtime import Runtime
from bot.background.scheduler import Scheduler
from bot.crisis import timeline
from bot.crisis.plan import Plan
from bot.demo.signed_slack import SlackClient
from bot.demo.slack_emulator import SlackEmulator
from bot.exports import stream_export
from bot.infra.clock import ManualClock
from bot.tasks.archive import CHANNEL_ARCHIVED
from bot.tasks.followups import TASK_HANDED_OVER
from handlers.slack_gateway import job_gateway
from models import ChannelArchive, Decision, FollowUp, Rumour, Task, transaction
from models.tasks import TASK_DONE, TASK_DROPPED, TASK_FOLLOWUP, TASK_OPEN
from tests.conftest import APPROVER, BYSTANDER, DRAFTER, LEAD, LIAISON, MONITOR
from tests.fixtures_lifecycle import all_text, events, open_incident, rows, wait_until
from tests.test_tasks import add_task, buttons, tasks_of, told


def _posted(emulator: SlackEmulator, channel_id: str, words: str) -> dict[str, Any]:
    return wait_until(lambda: next((m for m in emulator.messages(channel_id) if words in all_text(m)), None),
                      what=f"a message saying {words!r}")


def test_followups_from_the_command_and_the_buttons_on_decisions_and_rumours(
    slack: SlackClient, emulator: SlackEmulator, runtime: Runtime, clock: ManualClock
) -> None:
    room = open_incident(slack, emulator, runtime)
    slack.command(f"followup Review the baggage runbook <!channel> <@{LIAISON}>", user_id=LEAD,
                  channel_id=room.channel_id)
    note = _posted(emulator, room.channel_id, "Follow-up for after the incident")
    assert "&lt;!channel&gt;" in all_text(note) and f"<@{LIAISON}>" in all_text(note)
    slack.command("decide Offer meal vouchers", user_id=LEAD, channel_id=room.channel_id)
    decision_message = _posted(emulator, room.channel_id, "Offer meal vouchers")
    slack.command("rumor The CEO resigned", user_id=MONITOR, channel_id=room.channel_id)
    rumour_message = _posted(emulator, room.channel_id, "The CEO resigned")
    decision = rows(runtime, Decision, incident_id=room.id)[0]
    rumour = rows(runtime, Rumour, incident_id=room.id)[0]
    assert "followup_from" in buttons(decision_message) and "followup_from" in buttons(rumour_message)

    slack.block_action("followup_from", f"decision:{decision.id}", user_id=DRAFTER, channel_id=room.channel_id,
                       message=decision_message)
    slack.block_action("followup_from", f"rumour:{rumour.id}", user_id=MONITOR, channel_id=room.channel_id,
                       message=rumour_message)
    told(emulator, DRAFTER, "Follow-up recorded, owned by you")
    wait_until(lambda: len(rows(runtime, FollowUp, incident_id=room.id)) == 3)
    # The same decision twice is refused, and a decision shown in another channel is not this one's.
    slack.block_action("followup_from", f"decision:{decision.id}", user_id=LEAD, channel_id=room.channel_id,
                       message=decision_message)
    told(emulator, LEAD, "There is already a follow-up for this decision")
    other = open_incident(slack, emulator, runtime, "Another one")
    slack.block_action("followup_from", f"rumour:{rumour.id}", user_id=LEAD, channel_id=other.channel_id,
                       message=rumour_message)
    told(emulator, LEAD, "That rumour belongs to another incident's channel")
    followups = rows(runtime, FollowUp, incident_id=room.id)
    # The two clicks run on different workers: in either order.
    assert sorted((f.source, f.text, f.owner) for f in followups) == [
        ("command", "Review the baggage runbook <!channel>", LIAISON),
        ("decision", "Offer meal vouchers", DRAFTER),
        ("rumour", "Rumour: The CEO resigned", MONITOR),
    ]
    assert emulator.errors == []


def test_resolve_hands_open_tasks_to_the_lead_who_makes_each_a_followup_or_drops_it(
    slack: SlackClient, emulator: SlackEmulator, runtime: Runtime, clock: ManualClock
) -> None:
    room = open_incident(slack, emulator, runtime)
    keep = add_task(slack, runtime, room, f"Refund the stranded passengers <@{LIAISON}> due 2h")
    drop = add_task(slack, runtime, room, "Pin the status page")
    done = add_task(slack, runtime, room, "Brief support")
    slack.block_action("task_done", str(done.id), user_id=BYSTANDER, channel_id=room.channel_id)
    wait_until(lambda: rows(runtime, Task, id=done.id)[0].status == TASK_DONE)

    slack.command("resolve Back to normal", user_id=LEAD, channel_id=room.channel_id)
    handover = _posted(emulator, room.channel_id, "Tasks still open at resolve")
    text = all_text(handover)
    assert "Refund the stranded passengers" in text and "Pin the status page" in text and "Brief support" not in text
    # Only the lead decides; a button on a resolved incident's task no longer changes it.
    slack.block_action("task_handover_followup", str(keep.id), user_id=BYSTANDER, channel_id=room.channel_id,
                       message=handover)
    told(emulator, BYSTANDER, "Only the lead")
    slack.block_action("task_done", str(keep.id), user_id=LIAISON, channel_id=room.channel_id)
    told(emulator, LIAISON, "This incident is resolved")

    slack.block_action("task_handover_followup", str(keep.id), user_id=LEAD, channel_id=room.channel_id,
                       message=handover)
    wait_until(lambda: rows(runtime, Task, id=keep.id)[0].status == TASK_FOLLOWUP)
    slack.block_action("task_handover_drop", str(drop.id), user_id=LEAD, channel_id=room.channel_id,
                       message=handover)
    wait_until(lambda: rows(runtime, Task, id=drop.id)[0].status == TASK_DROPPED)
    slack.block_action("task_handover_drop", str(keep.id), user_id=LEAD, channel_id=room.channel_id,
                       message=handover)
    told(emulator, LEAD, "This task was already made a follow-up")

    [followup] = rows(runtime, FollowUp, incident_id=room.id)
    assert (followup.text, followup.owner, followup.source, followup.source_id) == (
        "Refund the stranded passengers", LIAISON, "task", keep.id)
    assert [(e.actor, e.data["choice"]) for e in events(runtime, room.id, TASK_HANDED_OVER)] == [
        (LEAD, TASK_FOLLOWUP), (LEAD, TASK_DROPPED)]
    # The hand-over message shows the choices in place, without buttons.
    updated = wait_until(lambda: (m := next(m for m in emulator.messages(room.channel_id)
                                            if m["ts"] == handover["ts"])) and not buttons(m) and m)
    assert f"made a follow-up by <@{LEAD}>" in all_text(updated) and f"dropped by <@{LEAD}>" in all_text(updated)
    assert emulator.errors == []


def _export(runtime: Runtime, incident_id: int, fmt: str) -> str:
    with runtime.sessions() as session:
        return "".join(stream_export(session, incident_id, fmt, runtime.plan, {}))


def test_the_export_lists_tasks_with_timing_followups_and_metrics(
    slack: SlackClient, emulator: SlackEmulator, runtime: Runtime, clock: ManualClock
) -> None:
    room = open_incident(slack, emulator, runtime, "sev2 outage Check-in down")
    statement = next(t for t in tasks_of(runtime, room.id) if t.kind == "statement")
    late = add_task(slack, runtime, room, f"Call the =airport <@{LIAISON}> due 15m")
    slack.command(f"followup Review the runbook <@{APPROVER}>", user_id=LEAD, channel_id=room.channel_id)
    wait_until(lambda: rows(runtime, FollowUp, incident_id=room.id))
    clock.advance(timedelta(minutes=20))
    slack.block_action("task_done", str(late.id), user_id=LIAISON, channel_id=room.channel_id)
    wait_until(lambda: rows(runtime, Task, id=late.id)[0].status == TASK_DONE)
    slack.command("draft twitter Where is my bag?", user_id=DRAFTER, channel_id=room.channel_id)
    approve = wait_until(lambda: next((a for m in emulator.messages(room.channel_id) for a in buttons(m)
                                       if "approve" in a), None), what="the draft")
    clock.advance(timedelta(minutes=55))  # 75 minutes after the open: the 60-minute target is missed
    slack.block_action(approve, user_id=APPROVER, channel_id=room.channel_id)
    wait_until(lambda: rows(runtime, Task, id=statement.id)[0].status == TASK_DONE)

    document = json.loads(_export(runtime, room.id, "json"))
    sections = document["sections"]
    tasks = {row["task"]: row for row in sections["tasks"]["rows"]}
    assert tasks[f"#{late.id}"]["owner"] == LIAISON and tasks[f"#{late.id}"]["late by"] == "5m"
    assert tasks[f"#{late.id}"]["done by"] == LIAISON and tasks[f"#{late.id}"]["state"] == "done"
    assert tasks[f"#{statement.id}"]["late by"] == "45m" and tasks[f"#{statement.id}"]["owner"] == DRAFTER
    assert sections["followups"]["rows"] == [{
        "follow-up": "Review the runbook", "owner": APPROVER, "from": "command", "recorded by": LEAD,
        "recorded at": sections["followups"]["rows"][0]["recorded at"]}]
    metrics = {row["metric"]: row for row in sections["coordination_metrics"]["rows"]}
    assert metrics["Time to first holding statement"]["value"] == "1h 15m"
    assert metrics["Time to first holding statement"]["against"] == "target 60m: missed by 15m"
    assert metrics["Tasks done late"]["value"] == "2"
    assert sections["coordination_metrics"]["tasks_done_late"] == 2

    markdown = _export(runtime, room.id, "md")
    assert "## Tasks" in markdown and "## Follow-ups" in markdown and "## Coordination metrics" in markdown
    assert "<h2>Tasks</h2>" in _export(runtime, room.id, "html")
    csv_rows = list(csv.DictReader(io.StringIO(_export(runtime, room.id, "csv"), newline="")))
    assert {"tasks", "followups", "coordination_metrics"} <= {row["kind"] for row in csv_rows}
    assert not any(cell.startswith("=") for row in csv_rows for cell in row.values())


def test_a_resolved_channel_is_archived_after_the_plan_s_days_with_a_note_first(
    slack: SlackClient, emulator: SlackEmulator, runtime: Runtime, plan: Plan, clock: ManualClock
) -> None:
    runtime.plan = plan.model_copy(update={"channel": plan.channel.model_copy(update={"archive_after_days": 3})})
    scheduler = Scheduler(runtime, job_gateway(runtime))
    assert "archive-channels" in [job.name for job in scheduler.periodic_jobs()]
    room = open_incident(slack, emulator, runtime)
    live = open_incident(slack, emulator, runtime, "Still going")
    slack.command("resolve", user_id=LEAD, channel_id=room.channel_id)
    wait_until(lambda: events(runtime, room.id, timeline.EXPORT_UPLOADED), what="the resolve's export upload")

    assert scheduler.archive_channels(clock.advance(timedelta(days=2))) == 0
    assert scheduler.archive_channels(clock.advance(timedelta(days=1, minutes=1))) == 1
    assert emulator.channels[room.channel_id].is_archived and not emulator.channels[live.channel_id].is_archived
    assert "archived now, 3 days after" in all_text(emulator.messages(room.channel_id)[-1])
    assert scheduler.archive_channels(clock.advance(timedelta(days=1))) == 0  # once
    assert len(emulator.calls_to("conversations.archive")) == 1
    assert [e.kind for e in events(runtime, room.id, CHANNEL_ARCHIVED)] == [CHANNEL_ARCHIVED]
    # Exports still work from the database.
    assert "Flights delayed" in _export(runtime, room.id, "md")
    with transaction(runtime.sessions) as session:
        assert session.get(ChannelArchive, room.id) is not None
    # Off by default: no job.
    runtime.plan = plan
    assert "archive-channels" not in [job.name for job in Scheduler(runtime, job_gateway(runtime)).periodic_jobs()]


def test_the_app_home_is_republished_with_your_tasks_on_open_severity_and_resolve(
    slack: SlackClient, emulator: SlackEmulator, runtime: Runtime, clock: ManualClock
) -> None:
    room = open_incident(slack, emulator, runtime, "sev2 outage Check-in down")
    # Opened: the drafter (a plan role holder) sees the incident and the statement task they own, unasked.
    home = wait_until(lambda: emulator.published_home(DRAFTER), what="the drafter's Home tab")
    text = all_text(home)
    assert "Your open tasks* (1)" in text and "Post a holding statement" in text and f"<#{room.channel_id}>" in text
    assert "SEV2" in text

    add_task(slack, runtime, room, f"Call the airport <@{LIAISON}> due 30m")
    published = len(emulator.calls_to("views.publish"))
    slack.command("severity sev1", user_id=LEAD, channel_id=room.channel_id)
    wait_until(lambda: len(emulator.calls_to("views.publish")) > published, what="views.publish")
    liaison_home = wait_until(lambda: (h := emulator.published_home(LIAISON)) and "SEV1" in all_text(h) and h)
    assert "Call the airport" in all_text(liaison_home)

    slack.command("resolve", user_id=LEAD, channel_id=room.channel_id)
    wait_until(lambda: (h := emulator.published_home(LIAISON)) and "Recently resolved" in all_text(h)
               and "Your open tasks" not in all_text(h), what="the liaison's Home after resolve")
    assert emulator.published_home(BYSTANDER) is None  # not concerned: not published unasked
    assert all(t.status == TASK_OPEN for t in tasks_of(runtime, room.id) if t.owner == LIAISON)
