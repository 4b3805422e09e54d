"""Everything a running War Room process shares: settings, plan, database, Slack client, scheduler."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Protocol

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import BackoffRetryIntervalCalculator
from slack_sdk.http_retry.handler import RetryHandler
from slack_sdk.web import SlackResponse
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from bot.crisis.plan import Plan
from bot.crisis.room import StatusSummary
from bot.infra.metrics import count_slack_error
from bot.infra.recent import Recent
from bot.infra.settings import Settings
from bot.queue.intake import JobIntake
from models import make_engine, make_session_factory

SLACK_TIMEOUT_SECONDS = 15


def slack_retry_handlers() -> list[RetryHandler]:
    """Retry what Slack asks us to retry: rate limits (honouring Retry-After), 5xx and dropped connections."""
    backoff = BackoffRetryIntervalCalculator(backoff_factor=0.5)
    return [
        RateLimitErrorRetryHandler(max_retry_count=3),
        ServerErrorRetryHandler(max_retry_count=2, interval_calculator=backoff),
        ConnectionErrorRetryHandler(max_retry_count=2, interval_calculator=backoff),
    ]


class CountingWebClient(WebClient):
    """The Web API client that counts its failed calls by method and error code (GET /metrics): every
    WebClient method, and Bolt's own calls, go through `api_call`."""

    def api_call(self, api_method: str, **kwargs: Any) -> SlackResponse:
        try:
            return super().api_call(api_method, **kwargs)
        except (SlackApiError, OSError) as exc:  # OSError: urllib's connection errors and timeouts
            count_slack_error(api_method, exc)
            raise


def make_slack_client(settings: Settings) -> WebClient:
    """The Web API client. Creating it makes no network call."""
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    return CountingWebClient(
        token=token,
        base_url=settings.slack_api_url,
        timeout=SLACK_TIMEOUT_SECONDS,
        retry_handlers=slack_retry_handlers(),
    )


# How old a `/crisis status` answer may be: when a whole war room asks at once (the answer is given inside
# Slack's ack, five reads), one read a second serves them all. The work the commands queue takes longer
# than this to show anyway (the worker polls every 0.2 s).
STATUS_SECONDS = 1.0


class Rescheduling(Protocol):
    """What the rest of the process asks of a running scheduler (bot.background.scheduler.Scheduler)."""

    def sync(self) -> None:
        """Re-read the tables now (an incident opened or resolved), not at the next periodic re-read."""


@dataclass
class Runtime:
    settings: Settings
    plan: Plan
    engine: Engine
    sessions: sessionmaker[Session]
    slack: WebClient
    scheduler: Rescheduling | None = None  # the scheduler, while this process leads
    # Set when this process queues a job, so in-process worker threads start on it at once.
    work_available: threading.Event = field(default_factory=threading.Event)
    extras: dict[str, Any] = field(default_factory=dict)
    # A drill's runtime (`warroom drill`): every incident it opens is a practice incident (`is_drill`).
    drill: bool = False
    # The ack path's group commit into the job queue; its writer thread starts on first use.
    intake: JobIntake = field(init=False)
    # `/crisis status` summaries by incident id, read again when older than STATUS_SECONDS.
    recent_status: Recent[int, StatusSummary] = field(
        default_factory=lambda: Recent[int, StatusSummary](STATUS_SECONDS)
    )

    def __post_init__(self) -> None:
        self.intake = JobIntake(self.engine, on_accepted=self.work_available.set)


def build_runtime(settings: Settings, plan: Plan, *, slack: WebClient | None = None) -> Runtime:
    """Wire a runtime from settings and plan; nothing connects until first use."""
    engine = make_engine(settings.database_url)
    return Runtime(
        settings=settings,
        plan=plan,
        engine=engine,
        sessions=make_session_factory(engine),
        slack=slack or make_slack_client(settings),
    )
