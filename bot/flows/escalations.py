"""Posting escalations (`bot.listening.escalations`) in their incidents' channels: the `escalate` job."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from bot.background.runtime import Runtime
from bot.crisis.timeline import record_event
from bot.flows.port import EscalationMessage, SlackFailure, SlackPort
from bot.listening.escalations import claim_escalation, mark_escalation_posted, release_escalation
from models import transaction, utcnow

log = logging.getLogger(__name__)
ESCALATION_POSTED = "escalation.posted"


def post_escalations(runtime: Runtime, port: SlackPort, escalation_ids: Sequence[int]) -> list[str]:
    """Post each escalation that is still due (open incident, under the hourly cap); their message ts.

    One that Slack refused goes back to pending and the others are still tried; then the first failure is
    raised, so the queue retries the job (posted ones are skipped) or tells of the failure.
    """
    posted: list[str] = []
    failures: list[SlackFailure] = []
    for escalation_id in escalation_ids:
        with transaction(runtime.sessions) as session:
            view = claim_escalation(session, runtime.plan.escalation, escalation_id, utcnow())
        if view is None:
            continue
        try:
            ts = port.post(view.channel_id, EscalationMessage(view))
        except SlackFailure as failure:
            log.warning("escalation %d not posted: %s", escalation_id, failure.code)
            with transaction(runtime.sessions) as session:
                release_escalation(session, escalation_id, failure.code)
            failures.append(failure)
            continue
        with transaction(runtime.sessions) as session:
            mark_escalation_posted(session, escalation_id, view.channel_id, ts)
            record_event(session, view.incident_id, ESCALATION_POSTED,
                         f"Escalated a {view.sentiment} {view.platform} post: {'; '.join(view.reasons)}"[:500],
                         data={"escalation_id": escalation_id, "mention_id": view.mention_id, "slack_ts": ts})
        posted.append(ts)
    if failures:
        raise failures[0]
    return posted
