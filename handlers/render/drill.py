"""The DRILL mark on everything a drill posts, and the drill's report (Block Kit)."""

from __future__ import annotations

import json
from typing import Any

from slack_sdk.models.blocks import Block

from bot.infra.mrkdwn import escape_and_truncate, truncate
from handlers.render.common import context, section

DRILL = "DRILL"
DRILL_NOTE = ":test_tube: *DRILL* — a practice incident replaying a recorded stream. Nothing here is real."
MAX_BLOCKS = 50  # Slack's limit per message
HEADER_LIMIT = 150


def drill_line(text: str, limit: int) -> str:
    """`DRILL · text`, cut to `limit` (notification text, topics, purposes, file comments)."""
    if text.startswith(f"{DRILL} · "):
        return text
    return truncate(f"{DRILL} · {text}", limit)


def drill_blocks(blocks: list[dict[str, Any]] | str) -> list[dict[str, Any]] | str:
    """The message's blocks under the DRILL note (or, in a message already at Slack's 50-block limit,
    with DRILL in front of its first header or section)."""
    if isinstance(blocks, str):  # a caller may pass the blocks as a JSON string
        return json.dumps(drill_blocks(json.loads(blocks)))
    marker = context(DRILL_NOTE).to_dict()
    if blocks and blocks[0] == marker:
        return blocks
    if len(blocks) < MAX_BLOCKS:
        return [marker, *blocks]
    first = dict(blocks[0])
    text = dict(first.get("text") or {})
    if first.get("type") == "header":
        text["text"] = drill_line(str(text.get("text", "")), HEADER_LIMIT)
    elif first.get("type") == "section" and text:
        text["text"] = f"*{DRILL}* · {text.get('text', '')}"
    first["text"] = text
    return [first, *blocks[1:]]


def drill_report_blocks(title: str, scorecard: str) -> list[Block]:
    """The message `/crisis drill` ends with: the scorecard, as preformatted text."""
    return [
        section(f":test_tube: *DRILL finished:* {escape_and_truncate(title, 200)}"),
        section(f"```{escape_and_truncate(scorecard, 2900)}```"),
        context("Replayed against an offline copy of War Room with a scripted team: "
                "no real incident, channel or account was touched. The export is in the thread."),
    ]
