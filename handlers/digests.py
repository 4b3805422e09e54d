"""Posting digests to incident channels: `/crisis digest` now, and the scheduler's on cadence."""

from __future__ import annotations

import logging
from datetime import datetime

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.charts import render_chart
from bot.digests import compute_digest, record_digest, record_digest_failure, summary_line
from bot.runtime import Runtime
from handlers.commands import CommandRequest
from handlers.render.digest import render_digest
from models import Incident, transaction, utcnow

log = logging.getLogger(__name__)
SCHEDULED, MANUAL = "scheduled", "manual"


def post_digest(runtime: Runtime, incident_id: int, *, kind: str = SCHEDULED, requested_by: str | None = None,
                now: datetime | None = None, client: WebClient | None = None) -> int:
    """Compute, post and record one digest (with its chart in the thread); returns the Digest id.

    A failed post is recorded on the timeline (`digest.failed`) and raised; a failed chart upload
    keeps the posted digest and notes the error on its row.
    """
    client = client or runtime.slack
    window_end = now or utcnow()
    with transaction(runtime.sessions) as session:
        incident = session.get(Incident, incident_id)
        if incident is None or incident.channel_id is None:
            raise LookupError(f"incident {incident_id} has no channel to post a digest in")
        channel_id = incident.channel_id
        figures = compute_digest(session, runtime.plan, incident_id, window_end)
    try:
        posted = client.chat_postMessage(channel=channel_id, text=summary_line(figures),
                                         blocks=render_digest(figures, runtime.plan.brand.name),
                                         unfurl_links=False, unfurl_media=False)
    except SlackApiError as exc:
        error = str(exc.response.get("error", "slack_error"))
        with transaction(runtime.sessions) as session:
            record_digest_failure(session, incident_id, kind=kind, requested_by=requested_by, error=error)
        raise
    slack_ts = str(posted["ts"])
    chart_error = None
    if not figures.quiet and figures.series:
        try:
            png = render_chart(figures.series, title=f"{figures.title} — mentions since opened",
                               minutes=figures.series_minutes)
            client.files_upload_v2(
                channel=channel_id, thread_ts=slack_ts, file=png, title="Mentions since the incident opened",
                filename=f"digest-{incident_id}-{window_end:%Y%m%d-%H%M}.png",
                alt_txt=f"Mentions per {figures.series_minutes} min and % negative since the incident opened",
            )
        except SlackApiError as exc:
            chart_error = f"chart upload failed: {exc.response.get('error', 'slack_error')}"
            log.warning("digest of incident %d: %s", incident_id, chart_error)
    with transaction(runtime.sessions) as session:
        digest = record_digest(session, figures, kind=kind, requested_by=requested_by, channel_id=channel_id,
                               slack_ts=slack_ts, error=chart_error)
        return digest.id


def digest_command(request: CommandRequest) -> None:
    """`/crisis digest`: post a digest of the severity's window now."""
    assert request.incident_id is not None
    post_digest(request.runtime, request.incident_id, kind=MANUAL, requested_by=request.user_id,
                client=request.client)
