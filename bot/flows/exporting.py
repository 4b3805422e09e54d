"""`/crisis export` and the export after resolve: the post-mortem drafted first (when an LLM is
configured), the export streamed to a temporary file, uploaded to the incident's channel, and logged."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from bot.assistant.post_mortem import post_mortem_for_export
from bot.background.runtime import Runtime
from bot.crisis import timeline
from bot.exports import FORMATS, export_filename, write_export
from bot.flows.port import SlackPort
from bot.infra.mrkdwn import escape_mrkdwn
from models import Incident, transaction

log = logging.getLogger(__name__)


def upload_export(runtime: Runtime, port: SlackPort, incident_id: int, fmt: str, actor: str) -> None:
    """Upload the incident's export in `fmt` to its channel and log `export.uploaded`; a Slack refusal is
    raised (SlackFailure) for the caller's failure policy."""
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
            write_export(runtime.sessions, incident_id, fmt, runtime.plan, out, port.user_profile,
                         post_mortem.sections)
        size = path.stat().st_size
        file_id = port.upload_file(
            channel_id, path, filename=filename, title=f"{title} — timeline ({spec.title})",
            comment=f":page_facing_up: Timeline export ({spec.title}) requested by <@{actor}>.{note}",
        )
    with transaction(runtime.sessions) as session:
        timeline.record_event(
            session, incident_id, timeline.EXPORT_UPLOADED, f"{spec.title} export uploaded", actor=actor,
            data={"format": fmt, "filename": filename, "bytes": size, "file_id": file_id},
        )
    log.info("incident %s: %s export uploaded (%d bytes)", incident_id, fmt, size)
