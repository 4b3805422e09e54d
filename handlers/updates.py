"""Stakeholder updates in Slack: `/crisis update [note]`, the overdue reminder's *Draft update*, and
*Post update* on an approved update that could not be posted. Drafting and approval are the drafts'
(handlers/drafts.py): an update is a draft for the `stakeholder` platform."""

from __future__ import annotations

from typing import Any

from slack_bolt import App
from slack_sdk import WebClient

from bot.background.runtime import Runtime
from bot.crisis.commands import form_of
from bot.drafting import updates
from bot.drafting.drafts import STAKEHOLDER_UPDATE
from bot.flows import drafting
from bot.flows.updates import post_update
from handlers.commands import CommandRequest
from handlers.interaction import (
    action_number,
    clicker_gateway,
    open_incident_here,
    surfaced,
    tell_privately,
    where,
)
from handlers.queued import WorkTable, enqueue_listener
from handlers.render.updates import POST_UPDATE, START_UPDATE
from models import transaction

START, POST = "update:start", "update:post"


def update_command(req: CommandRequest) -> None:
    """`/crisis update [note]`: draft a stakeholder update for approval."""
    try:
        note = updates.parse_update_note(req.args)
    except updates.UpdateInputError as exc:
        req.reply(str(exc), form=form_of("update"))
        return
    assert req.incident_id is not None
    drafting.start_draft(req.runtime, req.gateway(), incident_id=req.incident_id, platform=STAKEHOLDER_UPDATE,
                         request=note or updates.DEFAULT_REQUEST, user_id=req.user_id, channel_id=req.channel_id)


@surfaced("Drafting a stakeholder update")
def on_start_update(runtime: Runtime, body: dict[str, Any], client: WebClient) -> None:
    """*Draft update* on the overdue reminder: the same as `/crisis update` with no note."""
    user_id, channel_id = where(body)
    incident_id = open_incident_here(runtime, client, user_id, channel_id, "Draft update",
                                     "This incident is resolved, so no more updates are drafted here.")
    if incident_id is None:
        return
    drafting.start_draft(runtime, clicker_gateway(runtime, client, user_id, channel_id), incident_id=incident_id,
                         platform=STAKEHOLDER_UPDATE, request=updates.DEFAULT_REQUEST, user_id=user_id,
                         channel_id=channel_id)


@surfaced("Posting the update")
def on_post_update(runtime: Runtime, body: dict[str, Any], client: WebClient) -> None:
    """*Post update*: try again to post an approved update (after the bot was invited, say)."""
    user_id, channel_id = where(body)
    draft_id = action_number(body)
    if draft_id is None:
        return
    with transaction(runtime.sessions) as session:
        refusal = updates.post_refusal(session, draft_id, user_id)
    if refusal is not None:
        tell_privately(client, channel_id, user_id, refusal)
        return
    if post_update(runtime, clicker_gateway(runtime, client, user_id, channel_id), draft_id) is None:
        with transaction(runtime.sessions) as session:
            refusal = updates.post_refusal(session, draft_id, user_id)
        if refusal is not None:  # posted meanwhile by another click; a new failure was told in the room
            tell_privately(client, channel_id, user_id, refusal)


def register(app: App, runtime: Runtime, work: WorkTable) -> None:
    """Attach the reminder's and the not-posted notice's buttons."""
    app.action(START_UPDATE)(enqueue_listener(runtime, work, START))
    app.action(POST_UPDATE)(enqueue_listener(runtime, work, POST))
