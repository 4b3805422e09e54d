"""The messages the stakeholder-update flow hands to the Slack port (rendered in handlers/render/updates.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

# The metadata event type every posted stakeholder update carries, with the update's draft id as its key.
UPDATE_MARK = "warroom_stakeholder_update"


@dataclass(frozen=True)
class StakeholderUpdateMessage:
    """An approved update, posted verbatim in the stakeholder channel. `text` is team-approved but still
    escaped when shown."""

    brand: str
    incident_title: str
    text: str
    approved_by: str
    draft_id: int


@dataclass(frozen=True)
class UpdatePosted:
    """Told in the incident's room: the update went to the stakeholder channel."""

    draft_id: int
    channel_id: str
    approved_by: str


@dataclass(frozen=True)
class UpdateNotPosted:
    """Told in the incident's room: the approved update could not be posted, why, and a *Post update* button
    (for a private channel: invite the bot first)."""

    draft_id: int
    channel_ref: str | None
    reason: str
    private: bool = False


@dataclass(frozen=True)
class UpdateOverdue:
    """The lead's reminder in the room: no update for the severity's cadence, with a *Draft update* button."""

    leads: tuple[str, ...]
    due_at: datetime
    last_at: datetime
    minutes: int
