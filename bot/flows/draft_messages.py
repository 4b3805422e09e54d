"""The messages the drafting flow hands to the Slack port (rendered in handlers/render/drafts.py)."""

from __future__ import annotations

from dataclasses import dataclass

from bot.drafting.drafts import DraftView
from bot.publishing.publish import PublishPanel


@dataclass(frozen=True)
class DraftPlaceholder:
    """"Drafting a reply to …": the draft's message while the LLM (or the template) writes it."""

    draft: DraftView


@dataclass(frozen=True)
class AlreadyDrafting:
    """Told to someone who asked for the same draft again within seconds: no second draft, here is the first."""

    draft: DraftView
    link: str | None


@dataclass(frozen=True)
class DraftShown:
    """The draft as the database holds it, with its buttons, and *Publish* when it may be published."""

    draft: DraftView
    panel: PublishPanel | None = None
