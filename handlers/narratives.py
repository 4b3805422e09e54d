"""`/crisis narratives`: the incident's top narratives now, told privately (the flow is `bot.flows.narratives`)."""

from __future__ import annotations

from bot.flows.narratives import tell_narratives
from handlers.commands import CommandRequest


def narratives_command(request: CommandRequest) -> None:
    """`/crisis narratives`: group the incident's mentions in its severity's window and answer privately."""
    assert request.incident_id is not None
    tell_narratives(request.runtime, request.gateway(), request.incident_id)
