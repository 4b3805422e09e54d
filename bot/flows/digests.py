"""Posting a digest in an incident's channel: compute it, post it, upload its chart in the thread, record it.

A failed post is recorded on the timeline (`digest.failed`) and raised; a failed chart upload keeps the
posted digest and notes the error on its row.
"""

from __future__ import annotations

import logging
from datetime import datetime

from bot.background.runtime import Runtime
from bot.drafting.narrative_titles import title_narratives
from bot.exports.charts import render_chart
from bot.flows.port import DigestMessage, SlackFailure, SlackPort
from bot.listening.digests import compute_digest, record_digest, record_digest_failure
from models import Incident, transaction, utcnow

log = logging.getLogger(__name__)
SCHEDULED, MANUAL = "scheduled", "manual"


def post_digest(runtime: Runtime, port: SlackPort, incident_id: int, *, kind: str = SCHEDULED,
                requested_by: str | None = None, now: datetime | None = None) -> int:
    """Compute, post and record one digest (with its chart in the thread); returns the Digest id."""
    window_end = now or utcnow()
    with transaction(runtime.sessions) as session:
        incident = session.get(Incident, incident_id)
        if incident is None or incident.channel_id is None:
            raise LookupError(f"incident {incident_id} has no channel to post a digest in")
        channel_id = incident.channel_id
        figures = compute_digest(session, runtime.plan, incident_id, window_end)
    title_narratives(runtime, figures.narratives, runtime.plan.brand.name)
    try:
        slack_ts = port.post(channel_id, DigestMessage(figures, runtime.plan.brand.name))
    except SlackFailure as failure:
        with transaction(runtime.sessions) as session:
            record_digest_failure(session, incident_id, kind=kind, requested_by=requested_by, error=failure.code)
        raise
    chart_error = None
    if not figures.quiet and figures.series:
        try:
            png = render_chart(figures.series, title=f"{figures.title} — mentions since opened",
                               minutes=figures.series_minutes)
            port.upload(channel_id, content=png, thread_ts=slack_ts, title="Mentions since the incident opened",
                        filename=f"digest-{incident_id}-{window_end:%Y%m%d-%H%M}.png",
                        alt_text=f"Mentions per {figures.series_minutes} min and % negative since the "
                                 "incident opened")
        except SlackFailure as failure:
            chart_error = f"chart upload failed: {failure.code}"
            log.warning("digest of incident %d: %s", incident_id, chart_error)
    with transaction(runtime.sessions) as session:
        digest = record_digest(session, figures, kind=kind, requested_by=requested_by, channel_id=channel_id,
                               slack_ts=slack_ts, error=chart_error)
        return digest.id
