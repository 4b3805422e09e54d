"""Block Kit shared by every capability: usage, errors, simple notices."""

from __future__ import annotations

from slack_sdk.models.blocks import Block, ContextBlock, MarkdownTextObject, SectionBlock

from bot.commands import usage_lines

SECTION_LIMIT = 3000


def section(text: str) -> SectionBlock:
    """A mrkdwn section; the caller has escaped untrusted parts and kept within the 3,000 limit."""
    return SectionBlock(text=MarkdownTextObject(text=text))


def context(text: str) -> ContextBlock:
    return ContextBlock(elements=[MarkdownTextObject(text=text)])


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
