"""The brand-wide spike check and its alert: in the plan's alert channel, or, while open incidents cover
the brand, as a note in their channels (only when volume has doubled since the last alert)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select

from bot.background.runtime import Runtime
from bot.flows.port import SlackFailure, SlackPort, SpikeAlertMessage
from bot.listening.spike_explain import SpikeExplanation, explain_spike
from bot.listening.spikes import (
    SpikeVerdict,
    alert_severity,
    evaluate,
    mark_alert_posted,
    record_spike_alert,
    withdraw_alert,
)
from models import Incident, transaction
from models.incidents import OPEN

log = logging.getLogger(__name__)


def check_spikes(runtime: Runtime, port: SlackPort, now: datetime) -> str | None:
    """Judge the window ending at `now`; alert (or note into the covering incidents) when due; the ts."""
    thresholds = runtime.plan.spike
    with transaction(runtime.sessions) as session:
        verdict = evaluate(session, thresholds, now)
        if not verdict.is_spike:
            return None
        covering = list(session.execute(
            select(Incident.id, Incident.channel_id)
            .where(Incident.status == OPEN, Incident.channel_id.is_not(None)).order_by(Incident.id)
        ).all())
        alert = record_spike_alert(session, thresholds, verdict, covered=bool(covering))
        if alert is None:
            return None
        explanation = explain_spike(session, runtime.plan, verdict)
        alert.figures = {**verdict.as_json(), "explanation": explanation.as_json(),
                         "incidents": [incident_id for incident_id, _ in covering]}
        alert_id = alert.id
    channels = [channel for _, channel in covering if channel is not None]
    return post_spike_alert(runtime, port, alert_id, verdict, explanation, incident_channels=channels)


def post_spike_alert(runtime: Runtime, port: SlackPort, alert_id: int, verdict: SpikeVerdict,
                     explanation: SpikeExplanation | None = None, *,
                     incident_channels: Sequence[str] = ()) -> str | None:
    """Post the alert in `plan.alert_channel` (or as a note in each covering incident's channel) and record
    where; returns the (first) message ts (None: no channel)."""
    plan = runtime.plan
    message = SpikeAlertMessage(plan.brand.name, verdict, alert_severity(plan.spike, verdict), explanation,
                                incident_note=bool(incident_channels))
    posted: list[tuple[str, str]] = []
    try:
        if incident_channels:
            for channel_id in incident_channels:
                posted.append((channel_id, port.post(channel_id, message)))
        elif plan.alert_channel is None:
            log.warning("mention spike (%s) and no alert_channel in the plan", "; ".join(verdict.reasons))
            return None
        else:
            channel_id = port.find_channel(plan.alert_channel)
            posted.append((channel_id, port.post(channel_id, message)))
    except SlackFailure:
        if not posted:
            # Not posted after the client's retries: withdraw the alert so the next check tries again
            # instead of the cooldown silencing a spike nobody was told about.
            with transaction(runtime.sessions) as session:
                withdraw_alert(session, alert_id)
        raise
    finally:
        if posted:
            with transaction(runtime.sessions) as session:
                mark_alert_posted(session, alert_id, *posted[0])
    return posted[0][1]
