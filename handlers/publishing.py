"""*Publish* and *Retry publishing* on an approved draft: queued before the ack, run by a worker."""

from __future__ import annotations

from typing import Any

from slack_bolt import App
from slack_sdk import WebClient

from bot.background.runtime import Runtime
from bot.flows import drafting
from bot.flows.publishing import publish_draft
from handlers.interaction import action_number, surfaced, tell_privately, where
from handlers.queued import WorkTable, enqueue_listener
from handlers.render import publishing as render
from handlers.slack_gateway import client_gateway

PUBLISH = "draft:publish"


@surfaced("Publishing the draft")
def on_publish(runtime: Runtime, body: dict[str, Any], client: WebClient) -> None:
    """Publish the approved draft once; the message then shows the link (or the platform's refusal)."""
    user_id, channel_id = where(body)
    draft_id = action_number(body)
    if draft_id is None:
        return
    result = publish_draft(runtime.sessions, runtime.plan.publishing, draft_id, user_id)
    claim = result.claim
    if claim.refusal is not None:
        answer_in = channel_id or (claim.draft.channel_id if claim.draft else None)
        tell_privately(client, answer_in, user_id, render.publish_refusal_text(claim))
    if claim.draft is not None:
        drafting.show_draft(runtime, client_gateway(runtime, client), draft_id)


def register(app: App, runtime: Runtime, work: WorkTable) -> None:
    """Attach the publish buttons (both run the same queued work; the domain decides what a click may do)."""
    for action_id in (render.PUBLISH, render.RETRY_PUBLISH):
        app.action(action_id)(enqueue_listener(runtime, work, PUBLISH))
