"""What a button or form handler reads from Slack's payload, and how it answers the person who clicked.

Parsed once here, used by every capability's buttons (drafts, stakeholder updates, publishing): who
clicked and where, the clicked action's value, a private answer in the channel, and the one way work after
the ack reports a failure — retried by the queue when it may pass, else told to the clicker once.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from slack_bolt import Respond
from slack_sdk import WebClient

from bot.background.runtime import Runtime
from bot.crisis.incidents import find_incident_by_channel
from bot.infra.errors import AlreadyTold, describe, is_transient
from handlers.render.drafts import notice, notice_with_typed
from handlers.slack_gateway import SlackGateway, Tell, post_ephemeral, respond_teller, user_teller
from models import transaction
from models.incidents import RESOLVED

log = logging.getLogger(__name__)

ClickedWork = Callable[[Runtime, dict[str, Any], WebClient], None]


def where(body: dict[str, Any]) -> tuple[str, str]:
    """(user id, channel id) of an interaction."""
    return (body.get("user") or {}).get("id", ""), (body.get("channel") or {}).get("id", "")


def action_value(body: dict[str, Any]) -> str | None:
    """The clicked action's value, or None."""
    try:
        value = body["actions"][0]["value"]
    except (KeyError, IndexError, TypeError):
        return None
    return value if isinstance(value, str) else None


def action_number(body: dict[str, Any]) -> int | None:
    """The clicked action's value as a number (an id), or None."""
    try:
        return int(action_value(body) or "")
    except ValueError:
        return None


def tell_privately(client: WebClient, channel_id: str | None, user_id: str, text: str,
                   typed: str | None = None) -> None:
    """An ephemeral notice to the clicker in the channel, with what they typed in a form when it was not
    saved (so nothing is lost)."""
    shown, blocks = notice(text) if typed is None else notice_with_typed(text, typed)
    if channel_id:
        post_ephemeral(client, channel_id, user_id, shown, blocks)


def clicker_teller(body: dict[str, Any], client: WebClient, respond: Respond, *, in_channel: bool = True) -> Tell:
    """How to answer whoever clicked: through the payload's response_url when it has one (a message's button),
    else privately in the channel, or by DM when not `in_channel` (a message shortcut)."""
    if body.get("response_url"):
        return respond_teller(respond)
    user_id, channel_id = where(body)
    return user_teller(client, user_id, channel_id if in_channel else None)


def clicker_gateway(runtime: Runtime, client: WebClient, user_id: str, channel_id: str | None) -> SlackGateway:
    """The gateway for work a click started: what the flow has to tell goes privately to the clicker."""
    return SlackGateway(runtime, client, user_teller(client, user_id, channel_id))


def open_incident_here(runtime: Runtime, client: WebClient, user_id: str, channel_id: str, button: str,
                       when_resolved: str) -> int | None:
    """The id of the open incident whose channel `button` was clicked in; else None, and the clicker is told
    why (not an incident channel, or `when_resolved`)."""
    with transaction(runtime.sessions) as session:
        incident = find_incident_by_channel(session, channel_id)
        incident_id, status = (incident.id, incident.status) if incident else (None, None)
    if incident_id is None:
        tell_privately(client, channel_id, user_id, f"*{button}* works in an incident channel; this isn't one.")
        return None
    if status == RESOLVED:
        tell_privately(client, channel_id, user_id, when_resolved)
        return None
    return incident_id


def surfaced(what: str, channel_of: Callable[[Runtime, dict[str, Any]], str | None] | None = None
             ) -> Callable[[ClickedWork], ClickedWork]:
    """Work after a click: a transient failure is raised for the queue to retry; any other is told to the
    clicker once ("<what> failed (…). Nothing was lost; try again.") and the job ends failed, never done.
    `channel_of` finds the channel when the payload has none (a modal's submission)."""

    def decorate(listener: ClickedWork) -> ClickedWork:
        @functools.wraps(listener)
        def run(runtime: Runtime, body: dict[str, Any], client: WebClient) -> None:
            try:
                listener(runtime, body, client)
            except Exception as exc:
                if is_transient(exc):
                    raise  # the worker tries it again, and tells the clicker if it keeps failing
                log.exception("%s failed", what)
                user_id, channel_id = where(body)
                if not channel_id and channel_of is not None:
                    channel_id = channel_of(runtime, body) or ""
                try:
                    tell_privately(client, channel_id, user_id,
                                   f"{what} failed ({describe(exc)}). Nothing was lost; try again.")
                except Exception:  # Slack itself unreachable: the log is all that is left
                    log.exception("could not tell %s that %s failed", user_id, what)
                raise AlreadyTold(what) from exc  # failed, never marked done; told once

        return run

    return decorate
