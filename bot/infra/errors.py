"""What went wrong, for the failure policy: which failures are worth trying again, and how to say
one to a person."""

from __future__ import annotations

from slack_sdk.errors import SlackApiError, SlackClientError
from sqlalchemy.exc import DBAPIError, OperationalError

# Slack's answers that say "not now" rather than "no".
TRANSIENT_SLACK_ERRORS = frozenset({
    "ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout",
    "team_added_to_org",
})


class SlackFailure(Exception):
    """Slack refused a call or could not be reached, after the client's own retries (raised by the
    gateway to flows); `str()` says so in a person's words."""

    def __init__(self, method: str, code: str, *, transient: bool) -> None:
        self.method = method
        self.code = code
        self.transient = transient
        super().__init__("Slack could not be reached" if code == "unreachable" else f"Slack answered `{code}`")


class AlreadyTold(Exception):
    """Raised from a job's work after it told its requester what went wrong: the job is failed, and
    the failure policy does not tell them a second time."""


class CommandError(Exception):
    """A CLI command cannot do what it was asked: one line for the user, exit code 2."""


def is_transient(exc: BaseException) -> bool:
    """A failure that may pass by itself (a database or Slack outage, a dropped connection), so the
    job is tried again with back-off; anything else is told to the user at once."""
    if isinstance(exc, SlackFailure):
        return exc.transient
    if isinstance(exc, OperationalError) or (isinstance(exc, DBAPIError) and exc.connection_invalidated):
        return True
    if isinstance(exc, SlackApiError):
        status = getattr(exc.response, "status_code", 200)
        return status == 429 or status >= 500 or exc.response.get("error") in TRANSIENT_SLACK_ERRORS
    return isinstance(exc, ConnectionError | TimeoutError | OSError) and not isinstance(exc, SlackClientError)


def describe(exc: BaseException) -> str:
    """The failure in a few words a person can act on (never a stack trace, never a secret)."""
    if isinstance(exc, SlackFailure):
        return str(exc)
    if isinstance(exc, SlackApiError):
        return f"Slack answered `{exc.response.get('error', 'an error')}`"
    if isinstance(exc, SlackClientError):
        return "Slack could not be reached"
    if isinstance(exc, OperationalError):
        return "the database is unavailable right now"
    if isinstance(exc, ConnectionError | TimeoutError):
        return "a connection failed"
    return f"an unexpected error ({type(exc).__name__})"
