"""The `escalate` job: post the escalations ingest queued (the flow is `bot.flows.escalations`)."""

from __future__ import annotations

import logging
from typing import Any

from bot.background.runtime import Runtime
from bot.flows.escalations import post_escalations
from bot.listening.escalations import record_escalation_failure
from handlers.slack_gateway import job_gateway
from models import transaction

log = logging.getLogger(__name__)


def _ids(payload: dict[str, Any]) -> list[int]:
    return [int(value) for value in payload.get("escalation_ids", [])]


def run_escalation_job(runtime: Runtime, payload: dict[str, Any]) -> None:
    post_escalations(runtime, job_gateway(runtime), _ids(payload))


def tell_escalation_failed(runtime: Runtime, payload: dict[str, Any], reason: str) -> None:
    """Nobody asked for an escalation: the reason is logged and kept on the rows that were not posted."""
    log.error("escalations %s could not be posted: %s", _ids(payload), reason)
    with transaction(runtime.sessions) as session:
        record_escalation_failure(session, _ids(payload), reason)
