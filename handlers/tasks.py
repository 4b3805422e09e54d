"""`/crisis task`, `tasks`, `followup`; the task buttons (*Done*, *Take it*, *Snooze 30m*), *Follow-up* on
decisions and rumours, and the lead's hand-over of open tasks at resolve."""

from __future__ import annotations

import logging
import re
from typing import Any

from slack_bolt import App, Respond
from slack_sdk import WebClient
from sqlalchemy import select

from bot.background.runtime import Runtime
from bot.crisis.commands import parse_user_ref
from bot.flows.port import Notice, SlackFailure
from bot.flows.task_messages import FollowUpNote, TaskList
from bot.flows.tasks import refresh_tasks, show_task, update_handover
from bot.tasks import followups
from bot.tasks.followups import FOLLOWUP_FORM, add_followup, followup_from, hand_over_task, incident_followups
from bot.tasks.tasks import (
    TASK_FORM,
    TaskError,
    add_task,
    complete_task,
    forget_task,
    incident_tasks,
    parse_task_args,
    reassign_task,
    snooze_task,
    take_task,
)
from handlers.commands import CommandRequest
from handlers.interaction import clicker_teller, where
from handlers.queued import WorkTable, enqueue_listener
from handlers.render.incident import FOLLOWUP_FROM_ACTION, team_text
from handlers.render.tasks import (
    HANDOVER_DROP_ACTION,
    HANDOVER_FOLLOWUP_ACTION,
    TASK_DONE_ACTION,
    TASK_SNOOZE_ACTION,
    TASK_TAKE_ACTION,
)
from handlers.slack_gateway import SlackGateway, Tell, client_gateway
from models import Task, reading, transaction, utcnow
from models.tasks import STATEMENT, TASK_DROPPED, TASK_FOLLOWUP

log = logging.getLogger(__name__)
# Names of the queued work (the work table, handlers/tables.py, says what runs under each).
TASK_BUTTON = "tasks:button"
HANDOVER = "tasks:handover"
FOLLOWUP_FROM = "tasks:followup-from"
_REASSIGN = re.compile(r"^#(\d{1,9})\s+(\S+)$")


def _check_owner(request: CommandRequest, port: SlackGateway, owner: str | None) -> bool:
    """An owner must be an active person of the workspace; otherwise the asker is told so."""
    if owner is None or port.known_user(owner):
        return True
    request.reply(f"<@{owner}> is not an active person in this workspace, so they cannot own it. "
                  "Pick someone with Slack's @ autocomplete.", form=TASK_FORM)
    return False


def task_command(request: CommandRequest) -> None:
    """`/crisis task <text> [@owner] [due 30m|HH:MM]` adds a task; `/crisis task #3 @person` reassigns one."""
    assert request.incident_id is not None
    runtime, port = request.runtime, request.gateway()
    if (reassign := _REASSIGN.match(request.args)) is not None and reassign.group(2).startswith(("<@", "U", "W")):
        _reassign(request, port, int(reassign.group(1)), reassign.group(2))
        return
    try:
        args = parse_task_args(request.args, runtime.plan.zone, utcnow())
    except TaskError as exc:
        request.reply(str(exc), form=TASK_FORM)
        return
    if not _check_owner(request, port, args.owner):
        return
    with transaction(runtime.sessions) as session:
        task = add_task(session, request.incident_id, args, request.user_id)
    try:
        show_task(runtime, port, task.id)
    except SlackFailure as failure:
        if failure.transient:
            raise  # the worker runs the command again; the task is found, not made twice
        with transaction(runtime.sessions) as session:
            forget_task(session, task.id)
        request.reply(f"Slack would not post the task (`{failure.code}`), so it was not added. Try again.")


def _reassign(request: CommandRequest, port: SlackGateway, task_id: int, who: str) -> None:
    assert request.incident_id is not None
    owner = parse_user_ref(who)
    if owner is None:
        request.reply("Say who should own it with Slack's @ autocomplete.", form="/crisis task #<number> @person")
        return
    if not _check_owner(request, port, owner):
        return
    try:
        with transaction(request.runtime.sessions) as session:
            task = reassign_task(session, request.incident_id, task_id, request.user_id, owner)
    except TaskError as exc:
        request.reply(str(exc))
        return
    show_task(request.runtime, port, task.id)
    port.tell(Notice(f"Task #{task.id} is now <@{owner}>'s."))


def tasks_command(request: CommandRequest) -> None:
    """`/crisis tasks`: open and done tasks with owners and due times (read-only: the ack is the answer)."""
    assert request.incident_id is not None
    with reading(request.runtime.sessions) as session:
        listing = TaskList(tuple(incident_tasks(session, request.incident_id)),
                           tuple(incident_followups(session, request.incident_id)), utcnow())
    request.gateway().tell(listing)


def followup_command(request: CommandRequest) -> None:
    """`/crisis followup <text> [@owner]`: an action item for after the incident, echoed in the room."""
    assert request.incident_id is not None
    runtime, port = request.runtime, request.gateway()
    try:
        text, owner = followups.parse_followup_args(request.args)
    except TaskError as exc:
        request.reply(str(exc), form=FOLLOWUP_FORM)
        return
    if not _check_owner(request, port, owner):
        return
    with transaction(runtime.sessions) as session:
        followup = add_followup(session, request.incident_id, text, owner, request.user_id)
    port.post(request.channel_id, FollowUpNote(followup))


# ---------------------------------------------------------------------------------------------
# Buttons (run from the queue)
# ---------------------------------------------------------------------------------------------


def _click(body: dict[str, Any], client: WebClient, respond: Respond) -> tuple[str, str, str, str, Tell]:
    """(action id, value, user id, channel id, how to answer the clicker)."""
    action = (body.get("actions") or [{}])[0]
    user_id, channel_id = where(body)
    tell = clicker_teller(body, client, respond)
    return str(action.get("action_id", "")), str(action.get("value") or ""), user_id, channel_id, tell


def handle_task_button(runtime: Runtime, body: dict[str, Any], client: WebClient, respond: Respond) -> None:
    """*Done*, *Take it* or *Snooze 30m* on a task's message: the message is updated in place."""
    action_id, value, user_id, channel_id, tell = _click(body, client, respond)
    if not value.isdigit():
        tell("That button is out of date.", None)
        return
    task_id = int(value)
    try:
        with transaction(runtime.sessions) as session:
            if action_id == TASK_DONE_ACTION:
                task, changed = complete_task(session, task_id, user_id, channel_id)
                if not changed:
                    tell(f"<@{task.done_by}> already marked this task done.", None)
            elif action_id == TASK_TAKE_ACTION:
                take_task(session, task_id, user_id, channel_id)
            elif action_id == TASK_SNOOZE_ACTION:
                snooze_task(session, task_id, user_id, channel_id)
                tell("Snoozed: the next reminder comes in 30 minutes at the earliest.", None)
            else:
                tell("That button is out of date.", None)
                return
    except TaskError as exc:
        tell(str(exc), None)
        return
    show_task(runtime, SlackGateway(runtime, client, tell), task_id)


def handle_handover(runtime: Runtime, body: dict[str, Any], client: WebClient, respond: Respond) -> None:
    """*Follow-up* or *Drop* on the resolve hand-over (the lead only): the choice is recorded."""
    action_id, value, user_id, channel_id, tell = _click(body, client, respond)
    choice = {HANDOVER_FOLLOWUP_ACTION: TASK_FOLLOWUP, HANDOVER_DROP_ACTION: TASK_DROPPED}.get(action_id)
    if choice is None or not value.isdigit():
        tell("That button is out of date.", None)
        return
    try:
        with transaction(runtime.sessions) as session:
            task = hand_over_task(session, int(value), choice, user_id, channel_id)
    except TaskError as exc:
        tell(str(exc), None)
        return
    port = SlackGateway(runtime, client, tell)
    ts = (body.get("message") or {}).get("ts")
    if ts:
        update_handover(runtime, port, task.incident_id, channel_id, str(ts))
    refresh_tasks(runtime, port, [task.id])


def handle_followup_from(runtime: Runtime, body: dict[str, Any], client: WebClient, respond: Respond) -> None:
    """*Follow-up* on a decision or rumour: recorded, owned by whoever clicked."""
    _, value, user_id, channel_id, tell = _click(body, client, respond)
    source, _, source_id = value.partition(":")
    if not source_id.isdigit():
        tell("That button is out of date.", None)
        return
    try:
        with transaction(runtime.sessions) as session:
            followup = followup_from(session, source, int(source_id), user_id, channel_id)
    except TaskError as exc:
        tell(str(exc), None)
        return
    tell(f"Follow-up recorded, owned by you: {team_text(followup.text, 300)}", None)


# ---------------------------------------------------------------------------------------------
# Hooks from other capabilities
# ---------------------------------------------------------------------------------------------


def after_approval(runtime: Runtime, client: WebClient, incident_id: int) -> None:
    """An approved statement may have completed the playbook's statement task: update its message."""
    with transaction(runtime.sessions) as session:
        ids = list(session.scalars(select(Task.id).where(Task.incident_id == incident_id, Task.kind == STATEMENT)))
    refresh_tasks(runtime, client_gateway(runtime, client), ids)


def register(app: App, runtime: Runtime, work: WorkTable) -> None:
    task_buttons = re.compile(f"^({TASK_DONE_ACTION}|{TASK_TAKE_ACTION}|{TASK_SNOOZE_ACTION})$")
    app.action(task_buttons)(enqueue_listener(runtime, work, TASK_BUTTON))
    handover_buttons = re.compile(f"^({HANDOVER_FOLLOWUP_ACTION}|{HANDOVER_DROP_ACTION})$")
    app.action(handover_buttons)(enqueue_listener(runtime, work, HANDOVER))
    app.action(FOLLOWUP_FROM_ACTION)(enqueue_listener(runtime, work, FOLLOWUP_FROM))

