"""Parsing `/crisis` text. Pure functions: no Slack, no database."""

from __future__ import annotations

import re
from dataclasses import dataclass

# (subcommand, arguments, what it does) — the order and wording of PRODUCT.md's table.
COMMANDS: tuple[tuple[str, str, str], ...] = (
    ("open", "[sev1-4] [playbook] <title>", "opens an incident; no title opens a form"),
    ("assign", "<role> @user", "puts a member in a role"),
    ("roles", "", "who holds which role, which are empty"),
    ("severity", "<sev1-4>", "changes severity (logged)"),
    ("status", "[text]", "shows the state; with text, posts a status update"),
    ("fact", "<text>", "records a confirmed fact drafts may rely on"),
    ("message", "<text>", "records a key message for consistent wording"),
    ("rumor", "<claim>", "tracks a rumour (refute / confirm buttons)"),
    ("draft", "[platform] <what to reply to>", "asks the LLM for a reply draft"),
    ("decide", "<text>", "logs a decision"),
    ("digest", "", "posts a mention digest now"),
    ("export", "[md|html|json|csv]", "uploads the timeline export"),
    ("resolve", "[summary]", "resolves the incident"),
    ("catchup", "", "a private summary of what happened since you last looked"),
    ("update", "[note]", "drafts a stakeholder update for approval"),
    ("narratives", "", "the top narratives in the incident's mentions now"),
    ("task", "<text> [@owner] [due 30m|HH:MM]", "adds a task (`task #3 @person` reassigns task 3)"),
    ("tasks", "", "open and done tasks, with owners and due times"),
    ("followup", "<text> [@owner]", "records an action item for after the incident"),
    ("drill", "<name>", "replays a drill the plan defines against a practice copy of War Room"),
)
ANYWHERE = frozenset({"open", "help", "drill"})

_USER_REF = re.compile(r"^<@([UW][A-Z0-9]{2,})(?:\|[^>]*)?>$|^([UW][A-Z0-9]{2,})$")


@dataclass(frozen=True)
class ParsedCommand:
    name: str
    args: str


def parse_command(text: str) -> ParsedCommand:
    """Split `/crisis` text into a lower-cased subcommand and the rest, whitespace-trimmed.

    Any Unicode whitespace separates them (tab, newline, the no-break space Slack clients send).
    """
    parts = (text or "").split(maxsplit=1)
    if not parts:
        return ParsedCommand("", "")
    return ParsedCommand(parts[0].lower(), parts[1].strip() if len(parts) > 1 else "")


def form_of(name: str) -> str:
    """The correct form of a subcommand, e.g. "/crisis assign <role> @user"."""
    for command, arguments, _ in COMMANDS:
        if command == name:
            return f"/crisis {command} {arguments}".rstrip()
    return "/crisis help"


def usage_lines() -> list[str]:
    """One mrkdwn line per subcommand."""
    return [f"`/crisis {name}{' ' + args if args else ''}` — {does}" for name, args, does in COMMANDS]


def usage_text() -> str:
    """The whole usage as plain mrkdwn text."""
    return "*War Room* — `/crisis` commands:\n" + "\n".join(usage_lines())


def parse_user_ref(token: str) -> str | None:
    """A user id from `<@U123>`, `<@U123|name>` or a bare `U123`; None when it is not one."""
    match = _USER_REF.match(token.strip())
    if not match:
        return None
    return match.group(1) or match.group(2)
