"""Tasks: the playbook's checklist at open, `/crisis task` and `tasks`, the task buttons, reminders (owner,
then room; snooze; none after resolve; after a restart), and the statement task closed by an approval."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.background.runtime import Runtime, build_runtime
from bot.background.scheduler import Scheduler
from bot.demo.signed_slack import SlackClient
from bot.demo.slack_emulator import SlackEmulator
from bot.infra.clock import ManualClock
from bot.infra.settings import Settings
from bot.tasks.tasks import TASK_ADDED, TASK_COMPLETED, TASK_PLANNED, TaskError, parse_task_args
from handlers.slack_gateway import job_gateway
from models import Task, utcnow
from models.tasks import STATEMENT, TASK_DONE, TASK_OPEN
from tests.conftest import APPROVER, BYSTANDER, DRAFTER, LEAD, LIAISON
from tests.fixtures_lifecycle import OpenedIncident, all_text, events, incident, open_incident, rows, wait_until


def tasks_of(runtime: Runtime, incident_id: int) -> list[Task]:
    return rows(runtime, Task, incident_id=incident_id)


def task_messages(emulator: SlackEmulator, channel_id: str, task_id: int) -> list[dict[str, Any]]:
    """Every message in the channel that shows task #`task_id` (there should be exactly one)."""
    return [m for m in emulator.messages(channel_id) if all_text(m).startswith(f"Task #{task_id} ")]


def buttons(message: dict[str, Any]) -> list[str]:
    return [e["action_id"] for b in message.get("blocks") or [] if b["type"] == "actions" for e in b["elements"]]


def told(emulator: SlackEmulator, user_id: str, words: str) -> str:
    return wait_until(
        lambda: next((all_text(e) for e in emulator.ephemerals(user=user_id) if words in all_text(e)), None),
        what=f"an ephemeral to {user_id} saying {words!r}",
    )


def dms(emulator: SlackEmulator, user_id: str) -> list[str]:
    channel = emulator.dm_channel(user_id)
    return [all_text(m) for m in emulator.messages(channel.id)] if channel else []


def add_task(slack: SlackClient, runtime: Runtime, room: OpenedIncident, text: str, user_id: str = LEAD) -> Task:
    before = len(tasks_of(runtime, room.id))
    slack.command(f"task {text}", user_id=user_id, channel_id=room.channel_id)
    task = wait_until(lambda: (t := tasks_of(runtime, room.id))[before:] and t[before].slack_ts and t[before],
                      what=f"the task {text!r}")
    assert isinstance(task, Task)
    return task


def test_playbook_checklist_becomes_tasks_at_open_and_the_brief_shows_the_statement_target(
    slack: SlackClient, emulator: SlackEmulator, runtime: Runtime, clock: ManualClock
) -> None:
    room = open_incident(slack, emulator, runtime, "sev2 outage Check-in down")
    opened_at = incident(runtime, room.id).opened_at
    tasks = tasks_of(runtime, room.id)
    # The bundled outage playbook: four items, one a mapping with owner role, due time and kind.
    assert [t.text for t in tasks][:2] == ["Confirm scope and cause with operations", "Post a holding statement"]
    assert len(tasks) == 4 and all(t.status == TASK_OPEN and t.slack_ts for t in tasks)
    statement = tasks[1]
    assert (statement.kind, statement.owner_role, statement.owner) == (STATEMENT, "drafter", DRAFTER)
    assert statement.due_at == opened_at + timedelta(minutes=30)
    assert tasks[0].owner is None and tasks[0].due_at is None
    # Each task is one message with Done and Take it (no Snooze before it is overdue).
    for task in tasks:
        [message] = task_messages(emulator, room.channel_id, task.id)
        assert buttons(message) == ["task_done", "task_take"]
    assert f"<@{DRAFTER}>" in all_text(task_messages(emulator, room.channel_id, statement.id)[0])
    # The brief: the first holding statement is due 60 minutes after a sev2 opens (plan default).
    brief = next(m for m in emulator.messages(room.channel_id) if "Severity:" in all_text(m))
    due = int((opened_at + timedelta(minutes=60)).timestamp())
    assert f"First holding statement due:* <!date^{due}^" in all_text(brief)
    assert len(events(runtime, room.id, TASK_PLANNED)) == 4 and events(runtime, room.id, TASK_ADDED) == []
    assert emulator.errors == []


def test_add_list_done_and_take_update_one_message_in_place(
    slack: SlackClient, emulator: SlackEmulator, runtime: Runtime, clock: ManualClock
) -> None:
    room = open_incident(slack, emulator, runtime)
    task = add_task(slack, runtime, room, f"Call the airport <@{LIAISON}> due 45m")
    assert (task.owner, task.due_at, task.created_by) == (LIAISON, utcnow() + timedelta(minutes=45), LEAD)
    spare = add_task(slack, runtime, room, "Update the status page <!here>")
    assert spare.owner is None and spare.due_at is None and spare.text == "Update the status page <!here>"
    shown = all_text(task_messages(emulator, room.channel_id, spare.id)[0])
    assert "&lt;!here&gt;" in shown and "<!here>" not in shown  # team text never pings

    # `/crisis tasks` answers in the ack: open and done tasks with owners and due times.
    listing = slack.command("tasks", user_id=BYSTANDER, channel_id=room.channel_id)
    assert listing.status_code == 200
    text = all_text(listing.json())
    assert "Open tasks* (2)" in text and "Call the airport" in text and f"<@{LIAISON}>" in text
    assert f"<!date^{int(task.due_at.timestamp())}^" in text

    # Anyone may take an unowned task; the message changes in place (no new post).
    posted = len(emulator.messages(room.channel_id))
    slack.block_action("task_take", str(spare.id), user_id=BYSTANDER, channel_id=room.channel_id)
    wait_until(lambda: rows(runtime, Task, id=spare.id)[0].owner == BYSTANDER)
    wait_until(lambda: f"<@{BYSTANDER}>" in all_text(task_messages(emulator, room.channel_id, spare.id)[0]))
    # Taking a task someone else owns is a reassignment: not for a bystander; the lead may.
    slack.block_action("task_take", str(task.id), user_id=BYSTANDER, channel_id=room.channel_id)
    told(emulator, BYSTANDER, f"<@{LIAISON}> owns this task; only they or the lead can hand it on")
    assert rows(runtime, Task, id=task.id)[0].owner == LIAISON
    slack.command(f"task #{task.id} <@{APPROVER}>", user_id=BYSTANDER, channel_id=room.channel_id)
    told(emulator, BYSTANDER, "Only its owner")
    slack.command(f"task #{task.id} <@{APPROVER}>", user_id=LIAISON, channel_id=room.channel_id)
    wait_until(lambda: rows(runtime, Task, id=task.id)[0].owner == APPROVER)

    # Anyone in the channel may finish a task: who and when are recorded, the buttons go.
    slack.block_action("task_done", str(task.id), user_id=BYSTANDER, channel_id=room.channel_id)
    done = wait_until(lambda: (t := rows(runtime, Task, id=task.id)[0]).status == TASK_DONE and t)
    assert (done.done_by, done.done_at) == (BYSTANDER, utcnow())
    message = wait_until(lambda: (m := task_messages(emulator, room.channel_id, task.id)[0]) and not buttons(m) and m)
    assert f"done by <@{BYSTANDER}>" in all_text(message)
    slack.block_action("task_done", str(task.id), user_id=LEAD, channel_id=room.channel_id,
                       message=message | {"blocks": [{"type": "actions", "elements": [
                           {"type": "button", "action_id": "task_done", "value": str(task.id)}]}]})
    told(emulator, LEAD, f"<@{BYSTANDER}> already marked this task done")
    assert len(emulator.messages(room.channel_id)) == posted
    assert all(len(task_messages(emulator, room.channel_id, t.id)) == 1 for t in (task, spare))
    assert [e.actor for e in events(runtime, room.id, TASK_COMPLETED)] == [BYSTANDER]

    listing = all_text(slack.command("tasks", user_id=LEAD, channel_id=room.channel_id).json())
    open_part, done_part = listing.split("Done and closed")
    assert "Update the status page" in open_part and "Call the airport" in done_part
    assert emulator.errors == []


def test_due_at_a_time_of_day_is_in_the_plan_time_zone(
    slack: SlackClient, emulator: SlackEmulator, runtime: Runtime, clock: ManualClock
) -> None:
    room = open_incident(slack, emulator, runtime)
    # 09:00 UTC on 20 November is 09:00 in London (GMT); 10:30 London is 10:30 UTC.
    task = add_task(slack, runtime, room, "Brief the CEO due 10:30")
    assert task.due_at == utcnow().replace(hour=10, minute=30)


def test_bad_task_input_gets_a_clear_private_answer_and_changes_nothing(
    slack: SlackClient, emulator: SlackEmulator, runtime: Runtime, clock: ManualClock
) -> None:
    room = open_incident(slack, emulator, runtime)
    slack.command("task Brief the CEO due 08:00", user_id=LEAD, channel_id=room.channel_id)
    answer = told(emulator, LEAD, "08:00 (Europe/London) has already passed today")
    assert "/crisis task <text> [@owner] [due 30m|HH:MM]" in answer
    slack.command("task Brief the CEO due soonish", user_id=LEAD, channel_id=room.channel_id)
    told(emulator, LEAD, "`soonish` is not a due time")
    slack.command("task Brief the CEO <@UNOBODY99>", user_id=LEAD, channel_id=room.channel_id)
    told(emulator, LEAD, "<@UNOBODY99> is not an active person in this workspace")
    slack.command("task due 30m", user_id=LEAD, channel_id=room.channel_id)
    told(emulator, LEAD, "Say what the task is")
    general = slack.command("task Brief the CEO", user_id=LEAD)
    assert general.status_code == 200
    told(emulator, LEAD, "`/crisis task` works in an incident channel")
    slack.command("followup Review the runbook <@UNOBODY99>", user_id=LEAD, channel_id=room.channel_id)
    told(emulator, LEAD, "<@UNOBODY99> is not an active person")
    assert tasks_of(runtime, room.id) == [] and events(runtime, room.id, TASK_ADDED) == []


def _scheduler(runtime: Runtime) -> Scheduler:
    return Scheduler(runtime, job_gateway(runtime))


def test_an_overdue_task_nudges_its_owner_once_then_the_room_once(
    slack: SlackClient, emulator: SlackEmulator, runtime: Runtime, clock: ManualClock
) -> None:
    room = open_incident(slack, emulator, runtime)
    task = add_task(slack, runtime, room, f"Call the airport <@{LIAISON}> due 30m")
    scheduler = _scheduler(runtime)
    assert scheduler.send_task_reminders(clock.advance(timedelta(minutes=29))) == 0

    assert scheduler.send_task_reminders(clock.advance(timedelta(minutes=2))) == 1
    [nudge] = dms(emulator, LIAISON)
    assert "Your task" in nudge and "Call the airport" in nudge
    # Overdue now: the task's own message gains *Snooze 30m*.
    assert buttons(task_messages(emulator, room.channel_id, task.id)[0]) == ["task_done", "task_take", "task_snooze"]
    room_before = len(emulator.messages(room.channel_id))
    assert scheduler.send_task_reminders(clock.advance(timedelta(minutes=10))) == 0  # not within 30 minutes

    assert scheduler.send_task_reminders(clock.advance(timedelta(minutes=21))) == 1
    room_nudges = [all_text(m) for m in emulator.messages(room.channel_id)[room_before:]]
    assert len(room_nudges) == 1 and f"<@{LIAISON}>'s task" in room_nudges[0]
    assert scheduler.send_task_reminders(clock.advance(timedelta(hours=3))) == 0  # once each
    assert len(dms(emulator, LIAISON)) == 1
    assert emulator.errors == []


def test_snooze_moves_the_next_reminder_and_a_done_task_is_not_nudged(
    slack: SlackClient, emulator: SlackEmulator, runtime: Runtime, clock: ManualClock
) -> None:
    room = open_incident(slack, emulator, runtime)
    task = add_task(slack, runtime, room, f"Call the airport <@{LIAISON}> due 30m")
    other = add_task(slack, runtime, room, "Update the status page due 30m")
    # Snoozing before it is overdue makes no sense and is refused.
    slack.block_action("task_snooze", str(task.id), user_id=LIAISON, channel_id=room.channel_id,
                       message=task_messages(emulator, room.channel_id, task.id)[0])
    told(emulator, LIAISON, "not overdue")
    scheduler = _scheduler(runtime)
    # The owner, and the room for the task nobody owns.
    assert scheduler.send_task_reminders(clock.advance(timedelta(minutes=31))) == 2
    slack.block_action("task_done", str(other.id), user_id=BYSTANDER, channel_id=room.channel_id)
    wait_until(lambda: rows(runtime, Task, id=other.id)[0].status == TASK_DONE)

    slack.block_action("task_snooze", str(task.id), user_id=LIAISON, channel_id=room.channel_id)
    told(emulator, LIAISON, "Snoozed")
    snoozed = rows(runtime, Task, id=task.id)[0]
    assert snoozed.next_nudge_at == utcnow() + timedelta(minutes=30) and snoozed.snoozed_by == LIAISON
    assert scheduler.send_task_reminders(clock.advance(timedelta(minutes=29))) == 0
    assert scheduler.send_task_reminders(clock.advance(timedelta(minutes=2))) == 1
    assert scheduler.send_task_reminders(clock.advance(timedelta(hours=2))) == 0  # nothing for the done one


def test_no_reminders_after_resolve(
    slack: SlackClient, emulator: SlackEmulator, runtime: Runtime, clock: ManualClock
) -> None:
    room = open_incident(slack, emulator, runtime)
    add_task(slack, runtime, room, f"Call the airport <@{LIAISON}> due 30m")
    slack.command("resolve", user_id=LEAD, channel_id=room.channel_id)
    wait_until(lambda: incident(runtime, room.id).status == "resolved")
    assert _scheduler(runtime).send_task_reminders(clock.advance(timedelta(hours=2))) == 0
    assert dms(emulator, LIAISON) == []


def test_a_reminder_comes_due_after_a_restart(
    slack: SlackClient, emulator: SlackEmulator, runtime: Runtime, settings: Settings, clock: ManualClock
) -> None:
    room = open_incident(slack, emulator, runtime)
    add_task(slack, runtime, room, f"Call the airport <@{LIAISON}> due 30m")
    _scheduler(runtime).send_task_reminders(clock.advance(timedelta(minutes=5)))
    # A new process: a new runtime and scheduler over the same database, nothing carried in memory.
    restarted = build_runtime(settings, runtime.plan)
    try:
        scheduler = _scheduler(restarted)
        assert "task-reminders" in [job.name for job in scheduler.periodic_jobs()]
        assert scheduler.send_task_reminders(clock.advance(timedelta(minutes=26))) == 1
    finally:
        restarted.engine.dispose()
    assert len(dms(emulator, LIAISON)) == 1


def test_the_first_approved_statement_completes_the_statement_task(
    slack: SlackClient, emulator: SlackEmulator, runtime: Runtime, clock: ManualClock
) -> None:
    room = open_incident(slack, emulator, runtime, "sev2 outage Check-in down")
    statement = next(t for t in tasks_of(runtime, room.id) if t.kind == STATEMENT)
    slack.command("draft twitter Where is my bag?", user_id=DRAFTER, channel_id=room.channel_id)
    wait_until(lambda: any("approve" in buttons(m) or "draft_approve" in str(buttons(m))
                           for m in emulator.messages(room.channel_id)), what="the draft")
    clock.advance(timedelta(minutes=40))
    approve = next(a for m in emulator.messages(room.channel_id) for a in buttons(m) if "approve" in a)
    slack.block_action(approve, user_id=APPROVER, channel_id=room.channel_id)
    done = wait_until(lambda: (t := rows(runtime, Task, id=statement.id)[0]).status == TASK_DONE and t)
    assert done.done_by == APPROVER and done.done_at == utcnow()
    [event] = [e for e in events(runtime, room.id, TASK_COMPLETED) if e.data.get("by_statement")]
    assert event.data["late_seconds"] == 10 * 60
    wait_until(lambda: not buttons(task_messages(emulator, room.channel_id, statement.id)[0]),
               what="the statement task's message updated")
    others = [t for t in tasks_of(runtime, room.id) if t.id != statement.id]
    assert all(t.status == TASK_OPEN for t in others)


# ----------------------------------------------------------------------------------- pure logic


def test_parse_task_args_reads_owner_and_due_at_the_end_in_either_order() -> None:
    now, zone = datetime(2026, 7, 1, 9, 0, tzinfo=UTC), ZoneInfo("Europe/London")  # 10:00 in London (BST)
    args = parse_task_args(f"Call the airport due 1h30m <@{LIAISON}>", zone, now)
    assert (args.text, args.owner, args.due_at) == ("Call the airport", LIAISON, now + timedelta(minutes=90))
    args = parse_task_args(f"Call <@{LEAD}> back <@{LIAISON}> due 10:30", zone, now)
    assert (args.text, args.owner, args.due_at) == (f"Call <@{LEAD}> back", LIAISON, now + timedelta(minutes=30))
    assert parse_task_args("Pin it due 2h", zone, now).due_at == now + timedelta(hours=2)
    for bad, words in (("Pin it due 09:59", "has already passed today"), ("Pin it due 0m", "now or in the past"),
                       ("Pin it due 200h", "within 7 days"), ("Pin it due", "Say when it is due"),
                       ("Pin it @bob", "`@bob` is not someone"), ("x" * 301, "keep it to 300"),
                       (f"<@{LIAISON}> due 30m", "Say what the task is")):
        with pytest.raises(TaskError, match=words):
            parse_task_args(bad, zone, now)
