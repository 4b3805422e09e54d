"""`/crisis export [md|html|json|csv]`: build the timeline export and upload it to the incident channel."""

from __future__ import annotations

import logging

from bot.crisis.commands import form_of
from bot.exports import FORMATS
from bot.flows.exporting import upload_export
from bot.infra.mrkdwn import escape_mrkdwn
from handlers.commands import CommandRequest

log = logging.getLogger(__name__)
DEFAULT_FORMAT = "md"


def export(request: CommandRequest) -> None:
    """`/crisis export [md|html|json|csv]`, Markdown when no format is given."""
    words = request.args.split()
    fmt = words[0].lower().lstrip(".") if words else DEFAULT_FORMAT
    if len(words) > 1 or fmt not in FORMATS:
        given = escape_mrkdwn(request.args[:40])
        request.reply(
            f"`{given}` is not an export format: use one of {', '.join(FORMATS)} (default md).",
            form=form_of("export"),
        )
        return
    assert request.incident_id is not None
    upload_export(request.runtime, request.gateway(), request.incident_id, fmt, request.user_id)
