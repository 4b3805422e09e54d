"""Block Kit for brand-wide spike alerts."""

from __future__ import annotations

import json

from slack_sdk.models.blocks import ActionsBlock, Block, ButtonElement, HeaderBlock

from bot.infra.mrkdwn import escape_and_truncate
from bot.listening.spikes import SpikeVerdict
from handlers.render.common import context, section

OPEN_INCIDENT_ACTION = "open_incident"


def spike_title(brand: str, verdict: SpikeVerdict) -> str:
    """The incident title the *Open incident* button suggests."""
    return f"{brand}: mention spike ({verdict.count} in {verdict.minutes} min)"[:200]


def render_spike_alert(brand: str, verdict: SpikeVerdict, severity: str) -> list[Block]:
    """The alert: what spiked and why, with an *Open incident* button prefilled for the lifecycle's modal."""
    value = json.dumps({"title": spike_title(brand, verdict), "severity": severity})
    figures = (
        f"*{verdict.count} mentions* in the {verdict.minutes} minutes to "
        f"{verdict.window_end:%H:%M} UTC (baseline mean {verdict.mean:g}, "
        f"{verdict.negative_share:.0%} negative)\n" + "\n".join(f"• {reason}" for reason in verdict.reasons)
    )
    return [
        HeaderBlock(text=f":rotating_light: Mention spike — {brand}"[:150]),
        section(f"{escape_and_truncate(brand, 80)}: {figures}"),
        ActionsBlock(elements=[
            ButtonElement(text="Open incident", action_id=OPEN_INCIDENT_ACTION, value=value, style="danger"),
        ]),
        context("Brand-wide spike check (plan `spike` thresholds). At most one alert per cooldown."),
    ]
