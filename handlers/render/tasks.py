"""Block Kit for tasks: a task's one message, the `/crisis tasks` list, reminders, follow-ups, the resolve
hand-over and the archive note."""

from __future__ import annotations

from datetime import datetime

from slack_sdk.models.blocks import ActionsBlock, Block, DividerBlock

from bot.flows.task_messages import ArchiveNote, FollowUpNote, Handover, TaskList, TaskMessage, TaskNudge
from bot.tasks.followups import FollowUpView
from bot.tasks.tasks import TaskView
from handlers.render.common import context, section, slack_date
from handlers.render.incident import button, format_duration, team_text
from models.tasks import TASK_DONE, TASK_DROPPED, TASK_FOLLOWUP, TASK_OPEN

TASK_DONE_ACTION = "task_done"
TASK_TAKE_ACTION = "task_take"
TASK_SNOOZE_ACTION = "task_snooze"
HANDOVER_FOLLOWUP_ACTION = "task_handover_followup"
HANDOVER_DROP_ACTION = "task_handover_drop"
MAX_LISTED = 40  # a message holds 50 blocks
MAX_HANDOVER = 20  # two blocks each


def _owner(task: TaskView) -> str:
    if task.owner:
        return f"<@{task.owner}>"
    return f"_nobody yet (the {task.owner_role} role is empty)_" if task.owner_role else "_nobody yet_"


def _due(task: TaskView, now: datetime) -> str:
    if task.due_at is None:
        return "no due time"
    if task.status == TASK_OPEN and task.due_at <= now:
        return f":warning: *overdue* since {slack_date(task.due_at)}"
    return f"due {slack_date(task.due_at)}"


def task_line(task: TaskView, now: datetime) -> str:
    """One task as a line: what, who, when."""
    text = team_text(task.text, 600)
    if task.status == TASK_DONE and task.done_at:
        late = f" · {format_duration(task.late_by)} late" if task.late_by else ""
        return f":white_check_mark: ~{text}~ · done by <@{task.done_by}> {slack_date(task.done_at)}{late}"
    if task.status == TASK_FOLLOWUP:
        return f":arrow_right: {text} · made a follow-up at resolve"
    if task.status == TASK_DROPPED:
        return f":heavy_multiplication_x: ~{text}~ · dropped at resolve"
    return f":ballot_box_with_check: *{text}* · {_owner(task)} · {_due(task, now)}"


def task_blocks(message: TaskMessage) -> list[Block]:
    task, now = message.task, message.now
    blocks: list[Block] = [section(f"*Task #{task.id}:* {task_line(task, now)}")]
    if task.kind == "statement" and task.status == TASK_OPEN:
        blocks.append(context("The first approved statement completes this task."))
    if task.status == TASK_OPEN:
        value = str(task.id)
        elements = [button("Done", TASK_DONE_ACTION, value, style="primary"),
                    button("Take it", TASK_TAKE_ACTION, value)]
        if task.overdue(now):
            elements.append(button("Snooze 30m", TASK_SNOOZE_ACTION, value))
        blocks.append(ActionsBlock(block_id=f"task-{task.id}", elements=elements))
    return blocks


def task_text(message: TaskMessage) -> str:
    task = message.task
    state = "done" if task.status == TASK_DONE else task.status
    return f"Task #{task.id} ({state}): {team_text(task.text, 300)}"


def task_list_blocks(listing: TaskList) -> list[Block]:
    open_tasks = [t for t in listing.tasks if t.status == TASK_OPEN]
    closed = [t for t in listing.tasks if t.status != TASK_OPEN]
    blocks: list[Block] = [section(f"*Open tasks* ({len(open_tasks)})")]
    if not open_tasks:
        blocks.append(context("No open task. Add one with `/crisis task <text> [@owner] [due 30m|HH:MM]`."))
    for task in open_tasks[:MAX_LISTED // 2]:
        blocks.append(section(f"#{task.id} {task_line(task, listing.now)}"))
    if len(open_tasks) > MAX_LISTED // 2:
        blocks.append(context(f"…and {len(open_tasks) - MAX_LISTED // 2} more open."))
    blocks.append(DividerBlock())
    blocks.append(section(f"*Done and closed* ({len(closed)})"))
    lines = [f"#{t.id} {task_line(t, listing.now)}" for t in closed[-MAX_LISTED // 2:]]
    blocks.append(section("\n".join(lines)) if lines else context("Nothing done yet."))
    if listing.followups:
        blocks.append(DividerBlock())
        blocks.append(section(f"*Follow-ups* ({len(listing.followups)})\n"
                              + "\n".join(followup_line(f) for f in listing.followups[-20:])))
    return blocks


def task_list_text(listing: TaskList) -> str:
    open_count = sum(1 for t in listing.tasks if t.status == TASK_OPEN)
    return f"{open_count} open tasks, {len(listing.tasks) - open_count} done or closed"


def followup_line(followup: FollowUpView) -> str:
    owner = f"<@{followup.owner}>" if followup.owner else "_no owner_"
    return f"• {team_text(followup.text, 600)} · {owner}"


def nudge_text(nudge: TaskNudge) -> str:
    task = nudge.task
    where = f" in <#{nudge.channel_id}>" if nudge.channel_id else ""
    overdue = f"was due {slack_date(task.due_at)}" if task.due_at else "is overdue"
    if nudge.to_owner:
        return (f":alarm_clock: Your task{where} {overdue}: *{team_text(task.text, 600)}*. "
                "Mark it *Done* on its message, or *Snooze 30m*.")
    owner = f"<@{task.owner}>'s task" if task.owner else "A task nobody owns"
    return f":alarm_clock: {owner} {overdue}: *{team_text(task.text, 600)}*. Can someone *Take it*?"


def followup_note_text(note: FollowUpNote) -> str:
    return f":arrow_right: Follow-up for after the incident: {followup_line(note.followup).removeprefix('• ')}"


def handover_blocks(handover: Handover) -> list[Block]:
    open_count = sum(1 for t in handover.tasks if t.status == TASK_OPEN)
    blocks: list[Block] = [section(f"*Tasks still open at resolve* ({open_count}): the lead makes each a "
                                   "follow-up or drops it.")]
    for task in handover.tasks[:MAX_HANDOVER]:
        if task.status == TASK_OPEN:
            blocks.append(section(f"#{task.id} *{team_text(task.text, 600)}* · {_owner(task)}"))
            value = str(task.id)
            blocks.append(ActionsBlock(block_id=f"handover-{task.id}", elements=[
                button("Follow-up", HANDOVER_FOLLOWUP_ACTION, value, style="primary"),
                button("Drop", HANDOVER_DROP_ACTION, value),
            ]))
        else:
            choice = "made a follow-up" if task.status == TASK_FOLLOWUP else "dropped"
            blocks.append(context(f"#{task.id} {team_text(task.text, 600)} · {choice} by <@{task.handed_over_by}>"))
    if len(handover.tasks) > MAX_HANDOVER:
        blocks.append(context(f"…and {len(handover.tasks) - MAX_HANDOVER} more: `/crisis tasks` lists them."))
    return blocks


def handover_text(handover: Handover) -> str:
    return f"{len(handover.tasks)} tasks were still open at resolve"


def archive_note_text(note: ArchiveNote) -> str:
    return (f":file_cabinet: This channel is archived now, {note.days} days after the incident was resolved. "
            "Its export still works: `warroom export` or `/crisis export` from the database.")


def render_task_message(message: object) -> tuple[str, list[Block] | None] | None:
    """A task message as (fallback text, blocks); None when `message` is not one of them."""
    match message:
        case TaskMessage():
            return task_text(message), task_blocks(message)
        case TaskList():
            return task_list_text(message), task_list_blocks(message)
        case TaskNudge():
            text = nudge_text(message)
            return text, [section(text)]
        case FollowUpNote():
            text = followup_note_text(message)
            return text, [section(text)]
        case Handover():
            return handover_text(message), handover_blocks(message)
        case ArchiveNote():
            text = archive_note_text(message)
            return text, [section(text)]
    return None
