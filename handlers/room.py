"""`/crisis fact`, `message`, `rumor`, `decide`; the rumour buttons; the *Add to timeline* shortcut."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

from slack_bolt import App, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy.orm import Session

from bot.background.runtime import Runtime
from bot.crisis.commands import form_of
from bot.crisis.incidents import find_incident_by_channel
from bot.crisis.room import (
    Entry,
    RoomError,
    add_fact,
    add_key_message,
    log_message,
    record_decision,
    set_rumour_message,
    set_rumour_outcome,
    track_rumour,
)
from bot.infra.errors import describe
from handlers.commands import CommandRequest
from handlers.interaction import clicker_teller, where
from handlers.queued import WorkTable, enqueue_listener
from handlers.render.incident import (
    RUMOUR_ACTION_PREFIX,
    entry_blocks,
    entry_text,
    rumour_blocks,
    rumour_text,
    timeline_logged_text,
)
from handlers.slack_gateway import post_blocks, update_blocks
from models import transaction

log = logging.getLogger(__name__)
TIMELINE_SHORTCUT = "add_to_timeline"
# Names of the queued work (the work table, handlers/tables.py, says what runs under each).
RUMOUR_OUTCOME = "room:rumour-outcome"
ADD_TO_TIMELINE = "room:add-to-timeline"


def _record_and_echo(
    request: CommandRequest,
    name: str,
    what: str,
    label: str,
    emoji: str,
    record: Callable[[Session, int, str, str], Entry],
) -> None:
    """Store the text, then echo it in the channel; an empty or too-long text is refused first."""
    assert request.incident_id is not None
    if not request.args:
        request.reply(f"Say what the {what} is.", form=form_of(name))
        return
    try:
        with transaction(request.runtime.sessions) as session:
            entry = record(session, request.incident_id, request.args, request.user_id)
    except RoomError as exc:
        request.reply(str(exc), form=form_of(name))
        return
    post_blocks(
        request.client, request.channel_id, entry_text(label, entry), entry_blocks(label, emoji, entry)
    )


def fact_command(request: CommandRequest) -> None:
    """`/crisis fact <text>`: a confirmed fact drafts may rely on."""
    _record_and_echo(request, "fact", "fact", "Fact", ":white_check_mark:", add_fact)


def message_command(request: CommandRequest) -> None:
    """`/crisis message <text>`: agreed wording for consistent replies."""
    _record_and_echo(
        request, "message", "key message", "Key message", ":speaking_head_in_silhouette:", add_key_message
    )


def decide_command(request: CommandRequest) -> None:
    """`/crisis decide <text>`: a decision, with who and when."""
    _record_and_echo(request, "decide", "decision", "Decision", ":scales:", record_decision)


def rumor_command(request: CommandRequest) -> None:
    """`/crisis rumor <claim>`: tracked with *Refuted*, *Confirmed* and *Dismiss* buttons."""
    assert request.incident_id is not None
    if not request.args:
        request.reply("Say what the rumour claims.", form=form_of("rumor"))
        return
    runtime = request.runtime
    try:
        with transaction(runtime.sessions) as session:
            rumour = track_rumour(session, request.incident_id, request.args, request.user_id)
    except RoomError as exc:
        request.reply(str(exc), form=form_of("rumor"))
        return
    ts = post_blocks(request.client, request.channel_id, rumour_text(rumour), rumour_blocks(rumour))
    with transaction(runtime.sessions) as session:
        set_rumour_message(session, rumour.id, ts)


def handle_rumour_outcome(runtime: Runtime, body: dict[str, Any], client: WebClient, respond: Respond) -> None:
    """A rumour button (run from the queue): the first outcome sticks; the message loses its buttons
    and says who decided."""
    action = (body.get("actions") or [{}])[0]
    outcome = str(action.get("action_id", "")).removeprefix(RUMOUR_ACTION_PREFIX)
    user_id = (body.get("user") or {}).get("id", "")
    channel_id = (body.get("channel") or {}).get("id")
    tell = clicker_teller(body, client, respond)
    value = str(action.get("value") or "")
    if not value.isdigit():
        tell("That button is out of date.", None)
        return
    try:
        with transaction(runtime.sessions) as session:
            rumour, changed = set_rumour_outcome(session, int(value), outcome, user_id)
    except RoomError as exc:
        tell(str(exc), None)
        return
    if not changed:
        tell(f"This rumour was already marked {rumour.status} by <@{rumour.decided_by}>.", None)
    target_channel = channel_id
    ts = rumour.slack_ts or (body.get("message") or {}).get("ts")
    if not target_channel or not ts:
        return
    try:
        update_blocks(client, target_channel, ts, rumour_text(rumour), rumour_blocks(rumour))
    except SlackApiError as exc:
        tell(f"The outcome is recorded, but the message could not be updated: {describe(exc)}.", None)


def handle_add_to_timeline(runtime: Runtime, body: dict[str, Any], client: WebClient, respond: Respond) -> None:
    """The *Add to timeline* message shortcut (run from the queue): logs the message, its author and
    its own time."""
    user_id, channel_id = where(body)
    tell = clicker_teller(body, client, respond, in_channel=False)
    message = body.get("message") or {}
    with transaction(runtime.sessions) as session:
        incident = find_incident_by_channel(session, channel_id)
        incident_id = incident.id if incident else None
    if incident_id is None:
        tell(
            "*Add to timeline* works on messages in an incident channel, and this channel is not one. "
            "Use it on a message in the incident's war room.",
            None,
        )
        return
    author = message.get("user") or message.get("bot_id")
    try:
        with transaction(runtime.sessions) as session:
            entry = log_message(
                session,
                incident_id,
                text=str(message.get("text") or ""),
                author=author,
                ts=str(message.get("ts") or ""),
                actor=user_id,
                channel_id=channel_id,
            )
    except RoomError as exc:
        tell(str(exc), None)
        return
    tell(timeline_logged_text(entry), None)


def register(app: App, runtime: Runtime, work: WorkTable) -> None:
    rumour_buttons = re.compile("^" + re.escape(RUMOUR_ACTION_PREFIX) + "(refuted|confirmed|dismissed)$")
    app.action(rumour_buttons)(enqueue_listener(runtime, work, RUMOUR_OUTCOME))
    app.shortcut(TIMELINE_SHORTCUT)(enqueue_listener(runtime, work, ADD_TO_TIMELINE))
