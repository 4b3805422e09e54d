"""`/crisis digest`: post a digest of the severity's window now (the flow is `bot.flows.digests`)."""

from __future__ import annotations

from bot.flows.digests import MANUAL, post_digest
from handlers.commands import CommandRequest
from handlers.slack_gateway import SlackGateway, respond_teller


def digest_command(request: CommandRequest) -> None:
    """`/crisis digest`: post a digest of the severity's window now."""
    assert request.incident_id is not None
    port = SlackGateway(request.runtime, request.client, respond_teller(request.respond))
    post_digest(request.runtime, port, request.incident_id, kind=MANUAL, requested_by=request.user_id)
