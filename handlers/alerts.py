"""Posting brand-wide spike alerts to the plan's alert channel."""

from __future__ import annotations

import logging

from slack_sdk import WebClient
from slack_sdk.errors import SlackClientError

from bot.runtime import Runtime
from bot.spikes import SpikeVerdict, alert_severity, mark_alert_posted, withdraw_alert
from handlers.render.alerts import render_spike_alert
from models import transaction

log = logging.getLogger(__name__)


def resolve_channel(client: WebClient, reference: str) -> str:
    """A channel id for `C…` or `#name` (looked up with conversations.list; the name itself if not listed)."""
    if not reference.startswith("#"):
        return reference
    name = reference[1:]
    cursor: str | None = None
    while True:
        page = client.conversations_list(types="public_channel,private_channel", exclude_archived=True,
                                         limit=200, cursor=cursor)
        channels: list[dict[str, str]] = page.get("channels") or []
        for channel in channels:
            if channel.get("name") == name:
                return str(channel["id"])
        cursor = (page.get("response_metadata") or {}).get("next_cursor")
        if not cursor:
            # chat.postMessage also accepts a channel name; let Slack answer if it is wrong.
            return reference


def post_spike_alert(runtime: Runtime, alert_id: int, verdict: SpikeVerdict) -> str | None:
    """Post the alert in `plan.alert_channel` and record where; returns the message ts (None: no channel)."""
    plan = runtime.plan
    if plan.alert_channel is None:
        log.warning("mention spike (%s) and no alert_channel in the plan", "; ".join(verdict.reasons))
        return None
    client = runtime.slack
    severity = alert_severity(plan.spike, verdict)
    try:
        channel = resolve_channel(client, plan.alert_channel)
        posted = client.chat_postMessage(
            channel=channel, text=f"Mention spike: {verdict.count} mentions in {verdict.minutes} minutes",
            blocks=render_spike_alert(plan.brand.name, verdict, severity),
        )
    except SlackClientError:
        # Not posted after the client's retries: withdraw the alert so the next check tries again
        # instead of the cooldown silencing a spike nobody was told about.
        with transaction(runtime.sessions) as session:
            withdraw_alert(session, alert_id)
        raise
    with transaction(runtime.sessions) as session:
        mark_alert_posted(session, alert_id, str(posted["channel"]), str(posted["ts"]))
    return str(posted["ts"])
