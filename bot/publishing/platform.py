"""What every platform client answers: a post, a refusal with the platform's reason, or no answer."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class Posted:
    """A post on the platform: its id there and its public link."""

    external_id: str
    url: str


class Refused(Exception):
    """The platform said no. `reason` is its word for why; `retryable` when *Retry* can help (a rate limit, a
    credential to fix, a server error); `retry_after` when the platform said when."""

    def __init__(self, reason: str, *, retryable: bool, retry_after: datetime | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.retry_after = retry_after

    @classmethod
    def rate_limited(cls, who: str, until: datetime | None, detail: str = "") -> Refused:
        """The platform's rate limit: "<who> until HH:MM UTC<detail>" (the time when it said), retryable then."""
        when = f" until {until:%H:%M} UTC" if until else ""
        return cls(f"{who}{when}{detail}", retryable=True, retry_after=until)


class Unanswered(Exception):
    """The call may or may not have reached the platform (timeout, dropped connection, 5xx): the post must be
    looked up before anything is sent again."""


@dataclass(frozen=True)
class Answered:
    """The post a reply answers, as its platform names it (`external_id`, e.g. a status id or an at-uri)."""

    platform: str
    external_id: str
    url: str | None


class Publisher(Protocol):
    """One account on one platform, through the platform's own client library."""

    def post(self, text: str, reply_to: Answered | None, key: str) -> Posted:
        """Post `text` verbatim (a reply when `reply_to`); raises Refused or Unanswered."""
        ...

    def find(self, text: str, key: str, since: datetime) -> Posted | None:
        """The account's post made by this attempt (same key or same text since `since`), if any."""
        ...
