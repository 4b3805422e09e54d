"""Block Kit for narratives: a compact section in every digest, and the fuller `/crisis narratives` answer.

Labels, titles (model output), example posts, authors and rumour claims are untrusted: all escaped.
"""

from __future__ import annotations

from slack_sdk.models.blocks import Block, HeaderBlock

from bot.infra.mrkdwn import escape_and_truncate
from bot.listening.narratives import NOT_ENOUGH, Example, Narrative, NarrativeSet
from handlers.render.common import context, safe_link, section

LABEL_LIMIT = 120
EXAMPLE_LIMIT = 140
FULL_EXAMPLE_LIMIT = 300
CLAIM_LIMIT = 80
TREND_ICON = {"new": ":new:", "rising": ":chart_with_upwards_trend:", "steady": ":left_right_arrow:",
              "falling": ":chart_with_downwards_trend:"}


def _count(value: int) -> str:
    for size, suffix in ((1_000_000_000, "B"), (1_000_000, "M"), (1_000, "k")):
        if value >= size:
            return f"{value / size:.1f}".rstrip("0").rstrip(".") + suffix
    return str(value)


def _figures(narrative: Narrative) -> str:
    trend = f"{TREND_ICON.get(narrative.trend, '')} {narrative.trend}"
    if narrative.trend in ("rising", "falling", "steady"):
        trend += f" (was {narrative.previous})"
    return (f"{narrative.share:.0%} of posts ({narrative.posts}) · {trend} · "
            f"{narrative.negative_share:.0%} negative · reach {_count(narrative.reach)}")


def _rumours(narrative: Narrative) -> str:
    if not narrative.rumours:
        return ""
    claims = ", ".join(f"“{escape_and_truncate(claim, CLAIM_LIMIT)}”" for claim in narrative.rumours[:2])
    more = f" and {len(narrative.rumours) - 2} more" if len(narrative.rumours) > 2 else ""
    return f"\n   :mag: carries the tracked rumour {claims}{more}"


def _quote(example: Example, limit: int) -> str:
    return escape_and_truncate(" ".join(example.text.split()), limit)


def heading(narrative: Narrative) -> str:
    """The narrative's title (the model's) or its term label, escaped."""
    return escape_and_truncate(narrative.heading, LABEL_LIMIT)


def sample_note(narratives: NarrativeSet) -> str:
    if not narratives.sampled:
        return ""
    return (f" (grouped a sample of {narratives.posts:,} of the window's {narratives.window_posts:,} posts: "
            "every k-th post, so shares are estimates)")


def _other_line(narratives: NarrativeSet) -> str:
    return f"• _other_ — {narratives.other_share:.0%} of posts ({narratives.other_posts})"


def narratives_block(narratives: NarrativeSet | None) -> list[Block]:
    """The digest's compact section: one line per narrative with one example, then "other"."""
    if narratives is None:
        return []
    lines = [f"*Narratives*{sample_note(narratives)}"]
    if not narratives.narratives:
        lines.append(f"Not enough posts to group ({narratives.posts} in the window)." if narratives.note == NOT_ENOUGH
                     else "No story stands out: the posts share no common thread.")
        return [section("\n".join(lines))]
    for narrative in narratives.narratives:
        line = f"• *{heading(narrative)}* — {_figures(narrative)}"
        if narrative.examples:
            line += f"\n   e.g. “{_quote(narrative.examples[0], EXAMPLE_LIMIT)}”"
        lines.append(line + _rumours(narrative))
    lines.append(_other_line(narratives))
    return [section("\n".join(lines))]


def _author(example: Example) -> str:
    name = escape_and_truncate(example.author, 80) if example.author else "unknown author"
    return f"*{name}* · {escape_and_truncate(example.platform, 40)} · {_count(example.followers)} followers"


def render_narratives(narratives: NarrativeSet, window_minutes: int, brand: str) -> list[Block]:
    """`/crisis narratives`: each narrative with its figures and two or three example posts."""
    blocks: list[Block] = [HeaderBlock(text=f"Narratives — last {window_minutes} min")]
    intro = (f"{narratives.window_posts} posts in the window{sample_note(narratives)}. Terms are the words that "
             "set a narrative apart; brand words are never used.")
    if not narratives.narratives:
        text = (f"Not enough posts to group ({narratives.posts} in the last {window_minutes} min)."
                if narratives.note == NOT_ENOUGH else "No story stands out: the posts share no common thread.")
        return [*blocks, section(text), context(escape_and_truncate(brand, 80))]
    blocks.append(section(intro))
    for number, narrative in enumerate(narratives.narratives, start=1):
        terms = ", ".join(f"`{escape_and_truncate(term, 40)}`" for term in narrative.terms)
        lines = [f"*{number}. {heading(narrative)}*", _figures(narrative) + (f" · terms {terms}" if narrative.title
                                                                            else "")]
        for example in narrative.examples:
            link = safe_link(example.url, "open")
            lines.append(f">{_author(example)}{' · ' + link if link else ''}\n>{_quote(example, FULL_EXAMPLE_LIMIT)}")
        blocks.append(section("\n".join(lines) + _rumours(narrative)))
    blocks.append(section(_other_line(narratives)))
    footer = escape_and_truncate(brand, 80)
    if narratives.titled_by:
        footer += f" · titles written by {escape_and_truncate(narratives.titled_by, 60)} from the posts"
    elif narratives.title_error:
        footer += f" · titles by the model unavailable ({escape_and_truncate(narratives.title_error, 200)})"
    return [*blocks, context(footer)]
