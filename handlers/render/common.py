"""Block Kit shared by every capability: usage, errors, simple notices."""

from __future__ import annotations

from datetime import datetime

from slack_sdk.models.blocks import Block, ContextBlock, MarkdownTextObject, SectionBlock

from bot.crisis.commands import usage_lines
from bot.infra.mrkdwn import truncate

SECTION_LIMIT = 3000


def section(text: str) -> SectionBlock:
    """A mrkdwn section (the caller has escaped untrusted parts), cut to Slack's 3,000 characters."""
    return SectionBlock(text=MarkdownTextObject(text=truncate(text, SECTION_LIMIT)))


def context(text: str) -> ContextBlock:
    """A line of small mrkdwn text, cut to Slack's limit."""
    return ContextBlock(elements=[MarkdownTextObject(text=truncate(text, SECTION_LIMIT))])


def slack_date(moment: datetime | None) -> str:
    """A time every reader sees in their own zone (Slack's date token), with a UTC fallback."""
    if moment is None:
        return "an unknown time"
    fallback = moment.strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(moment.timestamp())}^{{date_short_pretty}} at {{time}}|{fallback}>"


def safe_link(url: str | None, label: str) -> str:
    """A mrkdwn link to an untrusted http(s) URL, or "" when it is not one."""
    if not url or not url.lower().startswith(("http://", "https://")):
        return ""
    # <, > and | would end the link early and let the rest of the URL become markup.
    cleaned = url.replace("&", "&amp;").replace("<", "%3C").replace(">", "%3E").replace("|", "%7C")
    return f"<{cleaned}|{label}>" if len(cleaned) < 1500 else ""


def usage_blocks(problem: str | None = None) -> list[Block]:
    """The `/crisis` usage, optionally under a line saying what was wrong."""
    blocks: list[Block] = []
    if problem:
        blocks.append(section(f":warning: {problem}"))
    blocks.append(section("*War Room* — `/crisis` commands:\n" + "\n".join(usage_lines())))
    blocks.append(context("Commands other than `open`, `drill` and `help` work inside an incident channel."))
    return blocks


def error_blocks(problem: str, correct_form: str | None = None) -> list[Block]:
    """A specific problem and, when known, the correct form of the command."""
    text = f":warning: {problem}"
    if correct_form:
        text += f"\nUsage: `{correct_form}`"
    return [section(text)]
