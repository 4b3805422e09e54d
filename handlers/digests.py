"""`/crisis digest`: post a digest of the severity's window now (the flow is `bot.flows.digests`)."""

from __future__ import annotations

from bot.flows.digests import MANUAL, post_digest
from handlers.commands import CommandRequest


def digest_command(request: CommandRequest) -> None:
    """`/crisis digest`: post a digest of the severity's window now."""
    assert request.incident_id is not None
    post_digest(request.runtime, request.gateway(), request.incident_id, kind=MANUAL, requested_by=request.user_id)
