"""Posting a brand-wide spike alert in the plan's alert channel."""

from __future__ import annotations

import logging

from bot.background.runtime import Runtime
from bot.flows.port import SlackFailure, SlackPort, SpikeAlertMessage
from bot.listening.spikes import SpikeVerdict, alert_severity, mark_alert_posted, withdraw_alert
from models import transaction

log = logging.getLogger(__name__)


def post_spike_alert(runtime: Runtime, port: SlackPort, alert_id: int, verdict: SpikeVerdict) -> str | None:
    """Post the alert in `plan.alert_channel` and record where; returns the message ts (None: no channel)."""
    plan = runtime.plan
    if plan.alert_channel is None:
        log.warning("mention spike (%s) and no alert_channel in the plan", "; ".join(verdict.reasons))
        return None
    message = SpikeAlertMessage(plan.brand.name, verdict, alert_severity(plan.spike, verdict))
    try:
        channel_id = port.find_channel(plan.alert_channel)
        ts = port.post(channel_id, message)
    except SlackFailure:
        # Not posted after the client's retries: withdraw the alert so the next check tries again
        # instead of the cooldown silencing a spike nobody was told about.
        with transaction(runtime.sessions) as session:
            withdraw_alert(session, alert_id)
        raise
    with transaction(runtime.sessions) as session:
        mark_alert_posted(session, alert_id, channel_id, ts)
    return ts
