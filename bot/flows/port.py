"""What a flow may ask of Slack, and the messages it hands over to be shown.

A flow never builds Block Kit: it passes one of the message values below, and the gateway renders
it (`handlers.slack_gateway`). A Slack call that failed after the client's own retries raises
`SlackFailure`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from bot.crisis.incidents import IncidentSnapshot, ResolveSummary
from bot.flows.draft_messages import AlreadyDrafting, DraftPlaceholder, DraftShown
from bot.flows.task_messages import TaskMessages
from bot.flows.update_messages import StakeholderUpdateMessage, UpdateNotPosted, UpdateOverdue, UpdatePosted
from bot.infra.errors import SlackFailure
from bot.listening.digests import DigestFigures
from bot.listening.escalations import EscalationView
from bot.listening.narratives import NarrativeSet
from bot.listening.spike_explain import SpikeExplanation
from bot.listening.spikes import SpikeVerdict

__all__ = ["SlackFailure", "SlackPort", "Channel", "Message", "Notice", "Brief", "Opened", "OpenFailed",
           "DigestMessage", "SpikeAlertMessage", "StakeholderUpdateMessage", "UpdatePosted", "UpdateNotPosted",
           "UpdateOverdue", "EscalationMessage", "NarrativesMessage", "Resolved",
           "DraftPlaceholder", "DraftShown", "AlreadyDrafting"]


# ---- messages a flow hands to the port -----------------------------------------------------------


@dataclass(frozen=True)
class Notice:
    """A short text (mrkdwn the flow has already escaped where needed)."""

    text: str


@dataclass(frozen=True)
class Brief:
    """The incident's pinned brief."""

    incident: IncidentSnapshot
    digest_minutes: int


@dataclass(frozen=True)
class Opened:
    """Told to the opener: the incident is open, with a link to its channel."""

    incident: IncidentSnapshot


@dataclass(frozen=True)
class OpenFailed:
    """Told to the opener: a step of the open failed; running the same open again resumes it."""

    title: str
    step: str
    problem: str


@dataclass(frozen=True)
class DigestMessage:
    """An incident's digest, posted in its channel."""

    figures: DigestFigures
    brand: str


@dataclass(frozen=True)
class SpikeAlertMessage:
    """A brand-wide mention spike, posted in the plan's alert channel, with the severity it suggests."""

    brand: str
    verdict: SpikeVerdict
    severity: str
    explanation: SpikeExplanation | None = None
    incident_note: bool = False  # posted in a covering incident's channel, not the alert channel


@dataclass(frozen=True)
class EscalationMessage:
    """One mention that crossed the plan's `escalation` thresholds, posted in the incident's channel."""

    view: EscalationView


@dataclass(frozen=True)
class Resolved:
    """The resolve summary posted in the incident's channel."""

    summary: ResolveSummary


@dataclass(frozen=True)
class NarrativesMessage:
    """An incident's narratives in its severity's window (`/crisis narratives`)."""

    narratives: NarrativeSet
    window_minutes: int
    brand: str


Message = (Notice | Brief | Opened | OpenFailed | DigestMessage | SpikeAlertMessage
           | StakeholderUpdateMessage | UpdatePosted | UpdateNotPosted | UpdateOverdue | TaskMessages
           | EscalationMessage | NarrativesMessage | Resolved | DraftPlaceholder | DraftShown | AlreadyDrafting)


@dataclass(frozen=True)
class Channel:
    """A channel Slack created: its id, its name, and whether it is private."""

    id: str
    name: str
    private: bool


class SlackPort(Protocol):
    def bot_user_id(self) -> str | None:
        """The bot's own user id (never invited anywhere)."""
        ...

    def create_channel(self, name: str, *, private: bool) -> Channel | None:
        """Create a channel, or None when the name is taken."""
        ...

    def usergroup_members(self, usergroup: str) -> list[str]:
        """The user ids in a Slack user group."""
        ...

    def invite(self, channel_id: str, users: Sequence[str]) -> list[str]:
        """Invite users (already-members are fine); the users Slack refused to invite."""
        ...

    def describe_channel(self, incident: IncidentSnapshot) -> None:
        """Set the incident channel's topic and purpose from the incident."""
        ...

    def find_channel(self, reference: str) -> str:
        """A channel id for `C…` or `#name` (the reference itself when no channel has that name)."""
        ...

    def join(self, channel_id: str) -> None:
        """Join a public channel (Slack refuses a private one: it must invite the bot)."""
        ...

    def find_marked(self, channel_id: str, mark: str, key: str) -> str | None:
        """The ts of a recent message in the channel posted with metadata `mark` and this `key`, if any."""
        ...

    def post(self, channel_id: str, message: Message) -> str:
        """Post a message in a channel; its ts."""
        ...

    def permalink(self, channel_id: str, ts: str) -> str:
        """A link to a message."""
        ...

    def upload_file(self, channel_id: str, path: Path, *, filename: str, title: str, comment: str) -> str | None:
        """Upload a file from disk into a channel with a comment; its file id."""
        ...

    def user_profile(self, user_id: str) -> dict[str, Any]:
        """Slack's profile of one person (`users.info`'s `user`), for names in exports."""
        ...

    def publish_home(self, user_id: str) -> None:
        """Publish one person's App Home tab afresh."""
        ...

    def upload(self, channel_id: str, *, content: bytes, filename: str, title: str, alt_text: str,
               thread_ts: str | None = None) -> None:
        """Upload a file into a channel (into a message's thread when `thread_ts` is given)."""
        ...

    def pin(self, channel_id: str, ts: str) -> None:
        """Pin a message (already pinned is fine)."""
        ...

    def tell(self, message: Message) -> None:
        """Answer the person who asked, privately."""
        ...

    def update(self, channel_id: str, ts: str, message: Message) -> None:
        """Replace a message the bot posted (a task's one message changes in place)."""
        ...

    def known_user(self, user_id: str) -> bool:
        """Whether `user_id` is an active person of the workspace (a task's owner must be)."""
        ...

    def archive(self, channel_id: str) -> None:
        """Archive a channel (already archived is fine)."""
        ...
