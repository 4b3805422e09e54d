"""What `GET /metrics` shows, in Prometheus's text format: the metrics, the few functions that count,
and the scrape itself.

One view of several processes. `warroom serve` acks Slack in its web process and runs the queued work
in a worker child process, so the jobs' outcomes, most Slack calls and every LLM call happen where no
web request is served. With PROMETHEUS_MULTIPROC_DIR set (`serve` sets it for itself and its worker
child; see bot/cli.py), each process writes its counters and histograms to its own files in that
directory (prometheus_client's multiprocess mode) and a scrape of any web process sums them all.
Without it (tests, the demo: one process) the scrape reads this process's own values.

The queue's depth and age are not any process's state: they are read from the jobs table at scrape
time, right however many processes there are, and nothing has to be told when a process dies.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from pydantic import SecretStr
from slack_sdk.errors import SlackApiError
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from bot.infra.bearer import bearer_matches
from bot.infra.clock import real_now
from models import Job, transaction
from models.jobs import QUEUED, RUNNING

log = logging.getLogger(__name__)

MULTIPROCESS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"

# This process's metrics, apart from prometheus_client's global registry (whose process and platform
# collectors say nothing in multiprocess mode, and would differ between the two modes).
REGISTRY = CollectorRegistry()

# Slack wants the ack within 3 seconds.
ACK_SECONDS = Histogram(
    "warroom_slack_ack_seconds", "Time to answer a signed Slack request in the web process, by surface.",
    ["surface"], buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0), registry=REGISTRY)
JOB_OUTCOMES = Counter(
    "warroom_job_outcomes", "Attempts of queued jobs, by kind and outcome (done, retried, failed).",
    ["kind", "outcome"], registry=REGISTRY)
SLACK_API_ERRORS = Counter(
    "warroom_slack_api_errors", "Slack Web API calls that failed (after the client's retries), by method "
    "and error code (Slack's own, http_NNN, timeout or connection_error).", ["method", "error"], registry=REGISTRY)
LLM_SECONDS = Histogram(
    "warroom_llm_request_seconds", "Time of a draft call to the language model, with its retries, by outcome "
    "(ok, error).", ["outcome"], buckets=(0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0), registry=REGISTRY)
LLM_ERRORS = Counter(
    "warroom_llm_errors", "Draft calls to the language model that gave no usable draft, by error (the "
    "client's exception class, or unusable_answer).", ["error"], registry=REGISTRY)
MENTIONS_INGESTED = Counter(
    "warroom_mentions_ingested", "Mentions stored (duplicates of stored ones not counted), by source.",
    ["source"], registry=REGISTRY)
MENTIONS_REFUSED = Counter(
    "warroom_mentions_refused", "Mentions pushed to POST /mentions and not stored, by reason: invalid "
    "(the mention itself), batch_refused (valid, in a batch with an invalid one), batch_too_large.",
    ["source", "reason"], registry=REGISTRY)

# What each kind of Slack request is called here, by its `type` (an interaction's payload, or the
# Events API's envelope); a slash command has no type, and anything else is "other".
_SURFACES = {
    "block_actions": "block_actions",
    "view_submission": "view_submission",
    "view_closed": "view_closed",
    "shortcut": "shortcut",
    "message_action": "shortcut",
    "event_callback": "event",
    "url_verification": "event",
}


def slack_surface(body: Mapping[str, Any]) -> str:
    """Which kind of Slack request `body` (as Bolt parsed it) is: command, block_actions,
    view_submission, view_closed, shortcut, event or other."""
    if "command" in body:
        return "command"
    return _SURFACES.get(str(body.get("type")), "other")


def observe_ack(body: Mapping[str, Any], seconds: float) -> None:
    """A Slack request with this (parsed) body was answered in `seconds`."""
    ACK_SECONDS.labels(slack_surface(body)).observe(seconds)


def count_slack_error(method: str, exc: BaseException) -> None:
    """A Web API call to `method` failed with `exc` (a SlackApiError, or the connection's OSError)."""
    if isinstance(exc, SlackApiError):
        data = exc.response.data
        code = data.get("error") if isinstance(data, dict) else None
        error = str(code)[:64] if code else f"http_{exc.response.status_code}"
    else:
        error = "timeout" if isinstance(exc, TimeoutError) else "connection_error"
    SLACK_API_ERRORS.labels(method, error).inc()


def count_refused_mentions(source: str, *, invalid: int = 0, refused_with_them: int = 0,
                           too_many: int = 0) -> None:
    """Mentions pushed and not stored: `invalid` ones, valid ones `refused_with_them` (their batch held
    an invalid one), and `too_many` in a batch over the size limit."""
    for reason, count in (("invalid", invalid), ("batch_refused", refused_with_them), ("batch_too_large", too_many)):
        if count:
            MENTIONS_REFUSED.labels(source, reason).inc(count)


class JobQueueCollector:
    """Queue depth by kind and status, and the oldest queued job's age, read from the jobs table at scrape
    time. When the database cannot be read the scrape goes on without them (and the log says why)."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def collect(self) -> Iterator[Metric]:
        query = (select(Job.kind, Job.status, func.count(Job.id), func.min(Job.created_at))
                 .where(Job.status.in_([QUEUED, RUNNING])).group_by(Job.kind, Job.status))
        try:
            with transaction(self.sessions) as session:
                rows = session.execute(query).all()
        except SQLAlchemyError as exc:
            log.warning("metrics: could not read the job queue: %s", type(exc).__name__)
            return
        now = real_now()
        depth = GaugeMetricFamily("warroom_queue_jobs", "Jobs waiting (queued) or being run (running), by kind.",
                                  labels=["kind", "status"])
        age = GaugeMetricFamily("warroom_queue_oldest_age_seconds",
                                "How long the oldest queued job of each kind has waited since it was acknowledged.",
                                labels=["kind"])
        for kind, status, count, oldest in rows:
            depth.add_metric([kind, status], count)
            if status == QUEUED:
                age.add_metric([kind], max(0.0, (now - oldest).total_seconds()))
        yield depth
        yield age


def exposition(sessions: sessionmaker[Session]) -> bytes:
    """The metrics of every process sharing PROMETHEUS_MULTIPROC_DIR (or of this one), and the queue's."""
    registry = CollectorRegistry()
    if os.environ.get(MULTIPROCESS_DIR_VARIABLE):
        MultiProcessCollector(registry)
    else:
        registry.register(REGISTRY)
    registry.register(JobQueueCollector(sessions))
    return generate_latest(registry)


def metrics_response(
    token: SecretStr | None, sessions: sessionmaker[Session], authorization: str
) -> tuple[int, bytes, dict[str, str]]:
    """GET /metrics as (HTTP status, body, headers): 404 while WARROOM_METRICS_TOKEN is unset, 401 for a
    missing or wrong bearer token (as POST /mentions answers), else the metrics."""
    json_type = {"Content-Type": "application/json"}
    if token is None:
        return 404, b'{"error": "metrics are off: WARROOM_METRICS_TOKEN is not set"}', json_type
    if not bearer_matches(authorization, token):
        return 401, b'{"error": "missing or wrong bearer token"}', {**json_type, "WWW-Authenticate": "Bearer"}
    return 200, exposition(sessions), {"Content-Type": CONTENT_TYPE_LATEST}
