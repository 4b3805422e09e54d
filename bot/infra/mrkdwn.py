"""Making text safe to show in Slack mrkdwn."""

from __future__ import annotations

import re

# Slack's own escaping: these three are the only characters mrkdwn treats as control.
_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
# A user or channel reference as Slack sends it with should_escape: <@U123>, <@U123|name>, <#C123|name>.
_SAFE_REFERENCE = re.compile(r"<([@#][UWC][A-Z0-9]{2,})(?:\|[^<>]*)?>")


def escape_mrkdwn(text: str) -> str:
    """Escape untrusted text (posts from the internet) so it can never link, ping or format-inject."""
    return text.translate(_ESCAPES)


def escape_team_text(text: str) -> str:
    """Escape text typed by a team member, keeping their user and channel mentions clickable.

    Everything else that could ping (<!channel>, <!here>, <!subteam^…>) or link is escaped.
    """
    out: list[str] = []
    position = 0
    for match in _SAFE_REFERENCE.finditer(text):
        out.append(escape_mrkdwn(text[position : match.start()]))
        out.append(f"<{match.group(1)}>")
        position = match.end()
    out.append(escape_mrkdwn(text[position:]))
    return "".join(out)


def truncate(text: str, limit: int, ellipsis: str = "…") -> str:
    """Cut `text` to at most `limit` characters, ending with an ellipsis when cut."""
    if len(text) <= limit:
        return text
    return text[: max(0, limit - len(ellipsis))].rstrip() + ellipsis


def escape_and_truncate(text: str, limit: int) -> str:
    """Escape untrusted text and keep the *escaped* result within `limit` characters, never splitting an entity."""
    escaped = escape_mrkdwn(text)
    if len(escaped) <= limit:
        return escaped
    cut = escaped[: max(0, limit - 1)]
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut.rstrip() + "…"
