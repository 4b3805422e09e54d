"""`/crisis export [md|html|json|csv]`: build the timeline export and upload it to the incident channel."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from slack_sdk import WebClient

from bot.assistant.post_mortem import post_mortem_for_export
from bot.background.runtime import Runtime
from bot.crisis import timeline
from bot.crisis.commands import form_of
from bot.exports import FORMATS, export_filename, write_export
from bot.infra.mrkdwn import escape_mrkdwn
from handlers.commands import CommandRequest
from models import Incident, transaction

log = logging.getLogger(__name__)
DEFAULT_FORMAT = "md"


def upload_export(runtime: Runtime, client: WebClient, incident_id: int, fmt: str, actor: str) -> None:
    """Upload the incident's export in `fmt` to its channel and log `export.uploaded` (resolve uses it)."""
    spec = FORMATS[fmt]
    with transaction(runtime.sessions) as session:
        incident = session.get(Incident, incident_id)
        if incident is None or incident.channel_id is None:
            raise LookupError(f"incident {incident_id} has no channel to upload to")
        channel_id, filename, title = incident.channel_id, export_filename(incident, fmt), incident.title
    # The model drafts the post-mortem before rendering (or the seeded sections stay, and the note says why).
    post_mortem = post_mortem_for_export(runtime, incident_id)
    note = f" {escape_mrkdwn(post_mortem.note())}" if post_mortem.note() else ""
    # Streamed to a temporary file, so a long timeline never sits in memory whole.
    with tempfile.TemporaryDirectory(prefix="warroom-export-") as folder:
        path = Path(folder) / filename
        with path.open("w", encoding="utf-8", newline="") as out:
            write_export(runtime.sessions, incident_id, fmt, runtime.plan, out, client, post_mortem.sections)
        size = path.stat().st_size
        response = client.files_upload_v2(
            channel=channel_id,
            file=str(path),
            filename=filename,
            title=f"{title} — timeline ({spec.title})",
            initial_comment=f":page_facing_up: Timeline export ({spec.title}) requested by <@{actor}>.{note}",
        )
    files = response.get("files") or [response.get("file") or {}]
    file_id = files[0].get("id") if files else None
    with transaction(runtime.sessions) as session:
        timeline.record_event(
            session,
            incident_id,
            timeline.EXPORT_UPLOADED,
            f"{spec.title} export uploaded",
            actor=actor,
            data={"format": fmt, "filename": filename, "bytes": size, "file_id": file_id},
        )
    log.info("incident %s: %s export uploaded (%d bytes)", incident_id, fmt, size)


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
    upload_export(request.runtime, request.client, request.incident_id, fmt, request.user_id)
