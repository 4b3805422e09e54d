"""`/crisis narratives`: the incident's top narratives now, told privately (the flow is `bot.flows.narratives`)."""

from __future__ import annotations

from bot.flows.narratives import tell_narratives
from handlers.commands import CommandRequest
from handlers.slack_gateway import SlackGateway, respond_teller


def narratives_command(request: CommandRequest) -> None:
    """`/crisis narratives`: group the incident's mentions in its severity's window and answer privately."""
    assert request.incident_id is not None
    port = SlackGateway(request.runtime, request.client, respond_teller(request.respond))
    tell_narratives(request.runtime, port, request.incident_id)
