"""Block Kit for brand-wide spike alerts: what crossed, and what changed. Post texts are untrusted and escaped."""

from __future__ import annotations

import json

from slack_sdk.models.blocks import ActionsBlock, Block, ButtonElement, HeaderBlock

from bot.infra.mrkdwn import escape_and_truncate
from bot.listening.spike_explain import SpikeExplanation
from bot.listening.spikes import SpikeVerdict
from handlers.render.common import context, section
from handlers.render.digest import safe_link
from handlers.render.escalations import short_count

OPEN_INCIDENT_ACTION = "open_incident"
POST_LIMIT = 280


def spike_title(brand: str, verdict: SpikeVerdict) -> str:
    """The incident title the *Open incident* button suggests."""
    return f"{brand}: mention spike ({verdict.count} in {verdict.minutes} min)"[:200]


def _sentiment_shift(verdict: SpikeVerdict) -> str:
    if verdict.baseline_negative_share is None:
        return f"{verdict.negative_share:.0%} negative (no posts in the baseline to compare with)"
    return (f"{verdict.negative_share:.0%} negative vs {verdict.baseline_negative_share:.0%} in the baseline "
            f"({verdict.shift_points:+.0f} points)")


def _changes(explanation: SpikeExplanation | None) -> list[str]:
    if explanation is None:
        return []
    lines = []
    if explanation.rising_terms:
        terms = ", ".join(f"`{escape_and_truncate(term.term, 40)}` ({term.posts}, was {term.previous})"
                          for term in explanation.rising_terms)
        lines.append(f"*Rising terms*: {terms}")
    if explanation.narratives:
        lines.append("*Narratives*")
        for story in explanation.narratives:
            lines.append(f"• {escape_and_truncate(story.text(), 160)}")
    if explanation.top_posts:
        lines.append("*Top posts by reach*")
        for post in explanation.top_posts:
            author = escape_and_truncate(post.author, 80) if post.author else "unknown author"
            text = escape_and_truncate(post.text, POST_LIMIT).replace("\n", " ")
            link = safe_link(post.url, "open")
            lines.append(f"• *{author}* ({short_count(post.followers)} followers, {post.sentiment}): {text}"
                         + (f" {link}" if link else ""))
    return lines


def render_spike_alert(brand: str, verdict: SpikeVerdict, severity: str,
                       explanation: SpikeExplanation | None = None, *, incident_note: bool = False) -> list[Block]:
    """The alert: the figures that crossed and what changed, with an *Open incident* button prefilled for the
    lifecycle's modal (not on a note into an incident that is already open)."""
    figures = (
        f"*{verdict.count} mentions* in the {verdict.minutes} minutes to {verdict.window_end:%H:%M} UTC "
        f"(baseline mean {verdict.mean:g} per window) · {_sentiment_shift(verdict)}\n"
        "*What crossed*\n" + "\n".join(f"• {reason}" for reason in verdict.reasons)
    )
    title = (f":chart_with_upwards_trend: Mentions doubled since the last alert — {brand}" if incident_note
             else f":rotating_light: Mention spike — {brand}")
    blocks: list[Block] = [HeaderBlock(text=title[:150]), section(f"{escape_and_truncate(brand, 80)}: {figures}")]
    changes = _changes(explanation)
    if changes:
        blocks.append(section("\n".join(changes)))
    if incident_note:
        blocks.append(context("Brand-wide spike check. While an incident is open, a note comes here only when "
                              "the volume has doubled since the last alert; the alert channel stays quiet."))
        return blocks
    value = json.dumps({"title": spike_title(brand, verdict), "severity": severity})
    blocks.append(ActionsBlock(elements=[
        ButtonElement(text="Open incident", action_id=OPEN_INCIDENT_ACTION, value=value, style="danger"),
    ]))
    blocks.append(context("Brand-wide spike check (plan `spike` thresholds). At most one alert per cooldown."))
    return blocks
