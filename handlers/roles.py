"""`/crisis assign`, `/crisis roles`, and the brief's *Claim* buttons."""

from __future__ import annotations

import logging
import re
from typing import Any

from slack_bolt import App, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from bot.background.runtime import Runtime
from bot.crisis.commands import form_of, parse_user_ref
from bot.crisis.incidents import IncidentError
from bot.crisis.roles import Assignment, RoleError, assign_role
from bot.flows.room import refresh_room, snapshot
from bot.infra.errors import describe
from bot.infra.mrkdwn import escape_team_text
from handlers.commands import CommandRequest
from handlers.interaction import clicker_teller, where
from handlers.queued import WorkTable, enqueue_listener
from handlers.render.incident import (
    CLAIM_ACTION_PREFIX,
    assignment_text,
    role_dm_blocks,
    roles_blocks,
    section,
)
from handlers.slack_gateway import Tell, bot_user_id, client_gateway, invite, post_blocks, respond_teller
from models import transaction
from models.incidents import RESOLVED

log = logging.getLogger(__name__)
CLAIM = "roles:claim"  # the queued work's name (handlers/tables.py says what runs under it)


def welcome_holder(runtime: Runtime, client: WebClient, assignment: Assignment, actor: str) -> list[str]:
    """After a role changed hands: invite the holder, DM them the role, update brief and topic, say so in the
    channel. Returns what Slack would not do."""
    incident = snapshot(runtime, assignment.incident_id)
    problems: list[str] = []
    if incident.channel_id and assignment.user_id != bot_user_id(runtime, client):
        try:
            refused = invite(client, incident.channel_id, [assignment.user_id])
            if refused:
                problems.append(f"inviting <@{assignment.user_id}>")
        except (SlackApiError, SlackClientError) as exc:
            problems.append(f"inviting <@{assignment.user_id}> ({describe(exc)})")
    try:
        post_blocks(client, assignment.user_id, f"You are now {escape_team_text(assignment.title)}",
                    role_dm_blocks(assignment, incident))
    except (SlackApiError, SlackClientError) as exc:
        problems.append(f"the DM to <@{assignment.user_id}> ({describe(exc)})")
    problems += refresh_room(runtime, client_gateway(runtime, client), assignment.incident_id)
    if incident.channel_id:
        text = assignment_text(assignment, actor)
        post_blocks(client, incident.channel_id, text, [section(text)])
    return problems


def _assign(
    runtime: Runtime,
    client: WebClient,
    tell: Tell,
    incident_id: int,
    role: str,
    user_id: str,
    actor: str,
    *,
    claim: bool,
) -> None:
    try:
        with transaction(runtime.sessions) as session:
            assignment = assign_role(session, runtime.plan, incident_id, role, user_id, actor, claim=claim)
    except (RoleError, IncidentError) as exc:
        tell(str(exc), None)
        return
    if not assignment.changed:
        tell(f"<@{user_id}> is already {assignment.title}.", None)
        return
    problems = welcome_holder(runtime, client, assignment, actor)
    if problems:
        tell(f"<@{user_id}> is now {assignment.title}, but Slack would not do: {'; '.join(problems)}.", None)


def assign_command(request: CommandRequest) -> None:
    """`/crisis assign <role> @user`."""
    words = request.args.split()
    roles = ", ".join(f"`{name}`" for name in request.runtime.plan.roles)
    if len(words) != 2:
        problem = "Name a role and a person." if len(words) < 2 else "Give exactly one role and one person."
        request.reply(f"{problem} Roles: {roles}.", form=form_of("assign"))
        return
    role, person = words
    user_id = parse_user_ref(person)
    if user_id is None and parse_user_ref(role) is not None:
        role, person, user_id = person, role, parse_user_ref(role)  # "@user role" is forgiven
    if user_id is None:
        request.reply(
            f"`{escape_team_text(person[:40])}` is not a person: mention them, like `@name`.",
            form=form_of("assign"),
        )
        return
    assert request.incident_id is not None
    _assign(
        request.runtime,
        request.client,
        respond_teller(request.respond),
        request.incident_id,
        role,
        user_id,
        request.user_id,
        claim=False,
    )


def roles_command(request: CommandRequest) -> None:
    """`/crisis roles`: who holds which role, which are empty."""
    if request.args:
        request.reply("`roles` takes no arguments.", form=form_of("roles"))
        return
    assert request.incident_id is not None
    incident = snapshot(request.runtime, request.incident_id)
    request.respond(response_type="ephemeral", text="Roles", blocks=roles_blocks(incident))


def handle_claim(runtime: Runtime, body: dict[str, Any], client: WebClient, respond: Respond) -> None:
    """A *Claim* button on the brief (run from the queue): the clicker takes the empty role."""
    action = (body.get("actions") or [{}])[0]
    user_id, _ = where(body)
    tell = clicker_teller(body, client, respond)
    incident_part, _, role = str(action.get("value") or "").partition(":")
    if not incident_part.isdigit() or not role:
        tell("That button is out of date; use `/crisis assign <role> @you` instead.", None)
        return
    incident_id = int(incident_part)
    try:
        incident = snapshot(runtime, incident_id)
    except IncidentError as exc:
        tell(str(exc), None)
        return
    if incident.status == RESOLVED:
        tell("This incident is resolved; its roles no longer change.", None)
        return
    _assign(runtime, client, tell, incident_id, role, user_id, user_id, claim=True)


def register(app: App, runtime: Runtime, work: WorkTable) -> None:
    app.action(re.compile("^" + re.escape(CLAIM_ACTION_PREFIX)))(enqueue_listener(runtime, work, CLAIM))
