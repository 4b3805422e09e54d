"""The drafting prompts: `prompts/*.md` templates a comms person edits, filled in with `str.format_map`."""

from __future__ import annotations

import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

PROMPTS_DIR = Path(__file__).resolve().parents[2] / "prompts"
SYSTEM_TEMPLATE = "system.md"
REQUEST_TEMPLATE = "request.md"
POST_OPEN, POST_CLOSE = "<<<POST", "POST>>>"
MAX_POST_CHARS = 4000
NO_FACTS = "None recorded yet. State no facts: acknowledge, and say more will follow."

# What each template may use; README.md in prompts/ lists the same names for the people who edit them.
SYSTEM_FIELDS = frozenset({"brand", "voice", "avoid", "sign_off", "strategy_guidance"})
REQUEST_FIELDS = frozenset(
    {"platform_name", "limit", "title", "severity", "playbook", "facts", "key_messages", "post",
     "recommended_strategy"}
)

# Runs of angle brackets (ASCII, full-width, small, single guillemets, double-angle glyphs) are how a
# post could fake the fence markers; turning them into single guillemets keeps the text readable.
_ANGLE_RUN = re.compile(r"[<＜﹤‹≪《〈⟨][<＜﹤‹≪《〈⟨]+|[>＞﹥›≫》〉⟩][>＞﹥›≫》〉⟩]+|[≪《≫》]")
_OPENERS = frozenset("<＜﹤‹≪《〈⟨")


class PromptError(Exception):
    """A template is missing or uses a placeholder War Room does not fill; the message names it."""


@dataclass(frozen=True)
class PromptContext:
    """Everything the two templates are filled with. `post` and `post_url` are untrusted."""

    brand: str
    voice: str
    avoid: tuple[str, ...]
    sign_off: str
    platform_name: str
    limit: int
    title: str
    severity: str
    playbook: str
    facts: tuple[str, ...]
    key_messages: tuple[str, ...]
    post: str
    post_url: str | None = None
    # Situational crisis communication theory: the playbook's crisis type's strategies (bot/drafting/strategy.py).
    strategy_guidance: str = ""
    recommended: str = "inform"


def load_template(name: str, directory: Path | None = None) -> str:
    """Read one template afresh (edits apply to the next draft)."""
    path = (directory or PROMPTS_DIR) / name
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PromptError(f"cannot read the prompt template {path} ({exc.strerror})") from None


def template_fields(template: str) -> set[str]:
    """The placeholder names a template uses, e.g. {"title", "post"}."""
    try:
        return {field for _, field, _, _ in string.Formatter().parse(template) if field is not None}
    except ValueError as exc:
        raise PromptError(f"a brace is unbalanced ({exc}); write a literal brace as {{{{ or }}}}") from None


def fill_template(template: str, values: Mapping[str, object], name: str, allowed: frozenset[str]) -> str:
    """Fill `{placeholders}`; an unknown one is a PromptError naming the template and the placeholder."""
    unknown = sorted(template_fields(template) - allowed)
    if unknown:
        listed = ", ".join("{" + field + "}" for field in unknown)
        known = ", ".join("{" + field + "}" for field in sorted(allowed))
        raise PromptError(f"prompts/{name} uses {listed}, which War Room does not fill (it fills {known})")
    # format_map inserts values verbatim: braces inside a post are never re-interpreted.
    return template.format_map(dict(values))


def defuse_markers(text: str) -> str:
    """Neutralise anything in untrusted text that looks like a fence marker, so it cannot close the fence."""

    def swap(match: re.Match[str]) -> str:
        return "".join("‹" if char in _OPENERS else "›" for char in match.group(0))

    return _ANGLE_RUN.sub(swap, text)


def fence_post(text: str) -> str:
    """The post as it goes between the markers: defused, without control characters, bounded in size."""
    cleaned = "".join(char for char in text if char in "\n\t" or char.isprintable())
    cleaned = defuse_markers(cleaned.strip())
    if len(cleaned) > MAX_POST_CHARS:
        cleaned = cleaned[:MAX_POST_CHARS] + " [… post cut here by War Room]"
    return cleaned


def _bullets(items: Sequence[str], empty: str) -> str:
    lines = [f"- {defuse_markers(' '.join(item.split()))}" for item in items if item.strip()]
    return "\n".join(lines) if lines else empty


def build_messages(context: PromptContext, directory: Path | None = None) -> tuple[str, str]:
    """The (system, user) messages of one draft request."""
    system_values = {
        "brand": context.brand,
        "voice": context.voice.strip() or "Calm, human and empathetic.",
        "avoid": ", ".join(f'"{word}"' for word in context.avoid) or "none",
        "sign_off": context.sign_off.strip() or "none",
        "strategy_guidance": context.strategy_guidance.strip() or "Choose the strategy from the confirmed facts.",
    }
    request_values = {
        "platform_name": context.platform_name,
        "limit": context.limit,
        "title": defuse_markers(context.title),
        "severity": context.severity,
        "playbook": defuse_markers(context.playbook),
        "facts": _bullets(context.facts, NO_FACTS),
        "key_messages": _bullets(context.key_messages, "None recorded yet."),
        # Built from the plan and a refuted rumour's claim (team-written): defused like the facts.
        "recommended_strategy": defuse_markers(" ".join(context.recommended.split())),
        # The address is untrusted too (a URL path can carry words), so it stays inside the fence.
        "post": fence_post(context.post)
        + (f"\n[address: {fence_post(context.post_url)}]" if context.post_url else ""),
    }
    system_template = load_template(SYSTEM_TEMPLATE, directory)
    request_template = load_template(REQUEST_TEMPLATE, directory)
    system = fill_template(system_template, system_values, SYSTEM_TEMPLATE, SYSTEM_FIELDS)
    user = fill_template(request_template, request_values, REQUEST_TEMPLATE, REQUEST_FIELDS)
    return system, user


def fenced_post(user_message: str) -> str | None:
    """The text between the fence markers of a user message, or None when there is no complete fence."""
    start = user_message.find(POST_OPEN)
    end = user_message.find(POST_CLOSE, start + len(POST_OPEN)) if start != -1 else -1
    if start == -1 or end == -1:
        return None
    return user_message[start + len(POST_OPEN) : end]
