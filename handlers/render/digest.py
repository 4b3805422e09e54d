"""Block Kit for mention digests. Every post text and author name is untrusted and escaped."""

from __future__ import annotations

from datetime import datetime

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)

from bot.infra.mrkdwn import escape_and_truncate
from bot.listening.digests import DigestFigures, RumourMatch, TopPost, Voice, summary_line
from handlers.render.common import context, safe_link, section
from handlers.render.corrections import sentiment_menu
from handlers.render.narratives import narratives_block

DRAFT_REPLY_ACTION = "draft_reply"
POST_TEXT_LIMIT = 600
NAME_LIMIT = 80
MAX_RUMOURS = 5
_SENTIMENT_ICON = {
    "negative": ":red_circle:", "neutral": ":white_circle:", "positive": ":large_green_circle:",
}


def _count(value: int) -> str:
    """1234 → 1.2k, 5600000 → 5.6M: followers at a glance."""
    for size, suffix in ((1_000_000_000, "B"), (1_000_000, "M"), (1_000, "k")):
        if value >= size:
            return f"{value / size:.1f}".rstrip("0").rstrip(".") + suffix
    return str(value)


def _author(name: str | None, platform: str) -> str:
    shown = escape_and_truncate(name, NAME_LIMIT) if name else "unknown author"
    return f"*{shown}* · {escape_and_truncate(platform, 40)}"


def _post_block(post: TopPost) -> SectionBlock:
    quote = escape_and_truncate(post.text, POST_TEXT_LIMIT).replace("\n", "\n>")
    link = safe_link(post.url, "Open post")
    lines = [
        f"{_author(post.author, post.platform)} · {_count(post.followers)} followers · "
        f"{_count(post.likes)} likes, {_count(post.shares)} shares, {_count(post.replies)} replies · "
        f"{_SENTIMENT_ICON.get(post.sentiment, '')} {post.sentiment}",
        f">{quote}",
    ]
    if link:
        lines.append(link)
    return SectionBlock(
        text=MarkdownTextObject(text="\n".join(lines)),
        accessory=ButtonElement(text="Draft reply", action_id=DRAFT_REPLY_ACTION, value=str(post.mention_id)),
    )


def _voices_block(heading: str, voices: list[Voice], *, negative_only: bool) -> SectionBlock:
    lines = [heading]
    for voice in voices:
        posts = f"{voice.posts} negative post{'s' * (voice.posts != 1)}" if negative_only else (
            f"{voice.posts} post{'s' * (voice.posts != 1)}, {voice.negative} negative")
        reach = _count(voice.followers)
        lines.append(f"• {_author(voice.author, voice.platform)} — {reach} followers, {posts}")
    return section("\n".join(lines))


def _rumour_line(match: RumourMatch) -> str:
    claim = escape_and_truncate(match.claim, 200)
    if not match.words:
        return f"• “{claim}” — no distinctive words to match on"
    line = f"• “{claim}” — *{match.window_matches}* new in this window, {match.total_matches} in total"
    if match.example is not None:
        line += f"\n   e.g. {_author(match.example.author, match.example.platform)}: " + escape_and_truncate(
            match.example.text, 200).replace("\n", " ")
    return line


def _time(iso: str) -> str:
    return datetime.fromisoformat(iso).strftime("%H:%M")


def render_digest(figures: DigestFigures, brand: str) -> list[Block]:
    """The digest: summary, spike flag, top posts with *Draft reply*, voices, rumours, narratives, rising terms."""
    window = f"{_time(figures.window_start)}–{_time(figures.window_end)} UTC"
    header = HeaderBlock(text=f"Mention digest — last {figures.window_minutes} min"[:150])
    footer = context(
        f"{escape_and_truncate(brand, 80)} · window {window} · "
        f"{figures.total_since_open} mentions since the incident opened · `/crisis digest` posts one now"
    )
    if figures.quiet:
        text = (f":zzz: *Quiet.* No mentions matched this incident in the last {figures.window_minutes} "
                f"minutes (the window before had {figures.previous_volume}).")
        return [header, section(text), *_rumour_blocks(figures), footer]

    split = figures.sentiment
    shares = " · ".join(
        f"{_SENTIMENT_ICON[label]} {split.get(label, 0) / figures.volume:.0%} {label}"
        for label in ("negative", "neutral", "positive")
    )
    change = figures.change
    trend = "new activity (the window before was empty)" if change is None else (
        f"{change:+.0%} vs the {figures.window_minutes} min before ({figures.previous_volume})")
    summary = f"*{figures.volume} mentions* · {trend}\n{shares}"
    if figures.spike:
        summary += "\n:rotating_light: *Spike*: " + "; ".join(figures.spike_reasons)
    if figures.escalations_held_back:
        summary += (f"\n:mute: {figures.escalations_held_back} more post(s) crossed the escalation thresholds "
                    "after the hourly cap was reached and were not posted one by one")
    blocks: list[Block] = [header, section(summary), DividerBlock()]
    if figures.top_posts:
        blocks.append(section("*Top posts* (reach × engagement)"))
        for post in figures.top_posts:
            blocks += [_post_block(post), ActionsBlock(elements=[sentiment_menu(post.mention_id, post.sentiment)])]
    if figures.influencers:
        blocks.append(_voices_block("*Top influencers*", figures.influencers, negative_only=False))
    if figures.detractors:
        blocks.append(_voices_block("*Top detractors*", figures.detractors, negative_only=True))
    blocks.extend(_rumour_blocks(figures))
    blocks.extend(narratives_block(figures.narratives))
    if figures.rising_terms:
        terms = ", ".join(
            f"`{escape_and_truncate(term.term, 40)}` ({term.posts}, was {term.previous})"
            for term in figures.rising_terms
        )
        blocks.append(section(f"*Rising terms*: {terms}"))
    blocks.append(footer)
    return blocks


def _rumour_blocks(figures: DigestFigures) -> list[Block]:
    if not figures.rumours:
        return []
    # Each line is bounded (claim and example are cut), so MAX_RUMOURS lines stay within a section.
    lines = [_rumour_line(match) for match in figures.rumours[:MAX_RUMOURS]]
    if len(figures.rumours) > MAX_RUMOURS:
        lines.append(f"…and {len(figures.rumours) - MAX_RUMOURS} more open rumours")
    return [section("*Rumour matches*\n" + "\n".join(lines))]


def digest_fallback(figures: DigestFigures) -> str:
    """The notification text of the digest message."""
    return summary_line(figures)

