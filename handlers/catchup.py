"""`/crisis catchup` and the catch-up someone gets for joining an incident channel late.

Both run after the ack, in a worker: gathering is quick, but the model may take seconds. The catch-up
is always answered: without a model, or when it fails, the summary is the deterministic one.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import App, Respond
from slack_sdk import WebClient

from bot.assistant.catchup import (
    CatchUp,
    claim_join_catchup,
    gather_catchup,
    mark_caught_up,
    record_join_catchup_sent,
)
from bot.assistant.model import model_access
from bot.assistant.summary import Summary, summarise
from bot.background.runtime import Runtime
from bot.queue.jobs import current_job
from handlers.commands import CommandRequest
from handlers.queued import INTERACTION_JOB, WorkTable, job_body
from handlers.render.catchup import catchup_blocks, catchup_text
from handlers.slack_gateway import bot_user_id, post_ephemeral
from models import transaction, utcnow

log = logging.getLogger(__name__)
# Name of the queued work (the work table, handlers/tables.py, says what runs under it).
ON_JOIN = "catchup:on-join"


def build_catchup(runtime: Runtime, incident_id: int, user_id: str) -> tuple[CatchUp, Summary]:
    """Gather the person's catch-up, then summarise it (outside the transaction: the model may be slow)."""
    with transaction(runtime.sessions) as session:
        catchup = gather_catchup(session, runtime.plan, incident_id, user_id, utcnow())
    return catchup, summarise(catchup, model_access(runtime), runtime.plan.brand.name)


def catchup_command(request: CommandRequest) -> None:
    """`/crisis catchup`: privately, what happened since you last looked; then that you have looked."""
    assert request.incident_id is not None
    catchup, summary = build_catchup(request.runtime, request.incident_id, request.user_id)
    request.respond(response_type="ephemeral", text=catchup_text(catchup), blocks=catchup_blocks(catchup, summary))
    with transaction(request.runtime.sessions) as session:
        mark_caught_up(session, request.incident_id, request.user_id, catchup.now)


def catch_up_on_join(runtime: Runtime, body: dict[str, Any], client: WebClient, respond: Respond) -> None:
    """A member_joined_channel event (run from the queue): someone joining an incident channel that is
    15 minutes old or more gets the catch-up privately, once."""
    event = body.get("event") or {}
    user_id, channel_id = str(event.get("user") or ""), str(event.get("channel") or "")
    job = current_job()
    claim = f"job:{job}" if job is not None else f"event:{body.get('event_id', '')}"
    with transaction(runtime.sessions) as session:
        verdict = claim_join_catchup(session, channel_id, user_id, bot_user_id(runtime, client), claim, utcnow())
    if not verdict.send or verdict.incident_id is None:
        log.debug("no join catch-up for %s in %s: %s", user_id, channel_id, verdict.reason)
        return
    catchup, summary = build_catchup(runtime, verdict.incident_id, user_id)
    post_ephemeral(client, channel_id, user_id, catchup_text(catchup), catchup_blocks(catchup, summary))
    with transaction(runtime.sessions) as session:
        record_join_catchup_sent(session, verdict.incident_id, user_id, catchup.now)


def register(app: App, runtime: Runtime, work: WorkTable) -> None:
    what = work[ON_JOIN].what

    @app.event("member_joined_channel")
    def member_joined(body: dict[str, Any]) -> None:
        # Queued before the ack like every other piece of work; a busy database loses only a catch-up.
        if not runtime.intake.accept(INTERACTION_JOB, {"work": ON_JOIN, "body": job_body(body)}):
            log.warning("%s was not queued: the database is busy", what)
