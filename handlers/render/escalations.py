"""Block Kit for escalations: one post that crossed the plan's thresholds. Its text is untrusted and escaped."""

from __future__ import annotations

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    MarkdownTextObject,
    SectionBlock,
)

from bot.infra.mrkdwn import escape_and_truncate
from bot.listening.escalations import EscalationView
from handlers.render.common import context
from handlers.render.corrections import sentiment_menu
from handlers.render.digest import DRAFT_REPLY_ACTION, POST_TEXT_LIMIT, safe_link

_ICON = {"negative": ":red_circle:", "neutral": ":white_circle:", "positive": ":large_green_circle:"}


def short_count(value: int) -> str:
    """1234 → 1.2k, 5600000 → 5.6M."""
    for size, suffix in ((1_000_000_000, "B"), (1_000_000, "M"), (1_000, "k")):
        if value >= size:
            return f"{value / size:.1f}".rstrip("0").rstrip(".") + suffix
    return str(value)


def render_escalation(view: EscalationView) -> list[Block]:
    """The post, why it was escalated, its figures, a link, *Draft reply* and the correction menu."""
    author = escape_and_truncate(view.author, 80) if view.author else "unknown author"
    engagement = view.likes + view.shares + view.replies
    growth = (f" (growing {view.growth_per_minute:,.0f}/min)" if view.growth_per_minute is not None else "")
    corrected = f" (corrected; model said {view.model_sentiment})" if view.sentiment != view.model_sentiment else ""
    quote = escape_and_truncate(view.text, POST_TEXT_LIMIT).replace("\n", "\n>")
    lines = [
        f":rotating_light: *Escalation* — {escape_and_truncate('; '.join(view.reasons), 600)}",
        f"*{author}* · {escape_and_truncate(view.platform, 40)} · reach {short_count(view.followers)} followers · "
        f"engagement {short_count(engagement)}{growth} · "
        f"{_ICON.get(view.sentiment, '')} {view.sentiment}{corrected}",
        f">{quote}",
    ]
    link = safe_link(view.url, "Open post")
    if link:
        lines.append(link)
    return [
        SectionBlock(text=MarkdownTextObject(text="\n".join(lines))),
        ActionsBlock(elements=[
            ButtonElement(text="Draft reply", action_id=DRAFT_REPLY_ACTION, value=str(view.mention_id)),
            sentiment_menu(view.mention_id, view.sentiment),
        ]),
        context("Escalated once per post, at most the plan's `escalation.hourly_cap` per hour; "
                "the rest are counted in the next digest."),
    ]


def escalation_text(view: EscalationView) -> str:
    """The notification text (escaped: it can be shown without the blocks)."""
    author = escape_and_truncate(view.author, 80) if view.author else "unknown author"
    return f"Escalation: {view.sentiment} {escape_and_truncate(view.platform, 40)} post by {author}"
