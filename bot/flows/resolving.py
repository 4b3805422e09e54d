"""Resolving an incident, the story after the lead's `/crisis resolve`: the record first (lead only,
refused with RoleError or IncidentError), then the room: the brief and topic, the summary with its
metrics, the hand-over of open tasks, the Markdown export, and the Home tabs."""

from __future__ import annotations

import logging

from bot.background.runtime import Runtime
from bot.crisis.incidents import resolve_incident, resolve_summary
from bot.flows.exporting import upload_export
from bot.flows.port import Resolved, SlackFailure, SlackPort
from bot.flows.room import refresh_homes, refresh_room
from bot.flows.tasks import post_handover
from models import transaction

log = logging.getLogger(__name__)


def resolve(runtime: Runtime, port: SlackPort, incident_id: int, actor: str, summary_text: str) -> list[str]:
    """Resolve the incident and tell the room; what Slack refused, in words for the lead."""
    with transaction(runtime.sessions) as session:
        resolve_incident(session, runtime.plan, incident_id, actor, summary_text)
    if runtime.scheduler is not None:
        try:
            runtime.scheduler.sync()  # its digests stop now, not at the scheduler's next re-read
        except Exception:
            log.exception("scheduler sync failed")  # it re-syncs on its own timer; a failed nudge only delays
    problems = refresh_room(runtime, port, incident_id)
    with transaction(runtime.sessions) as session:
        summary = resolve_summary(session, runtime.plan, incident_id)
    channel_id = summary.incident.channel_id
    if channel_id:
        try:
            port.post(channel_id, Resolved(summary))
        except SlackFailure as failure:
            problems.append(f"the summary ({failure})")
        try:
            post_handover(runtime, port, incident_id)  # open tasks: follow-up or drop
        except SlackFailure as failure:
            log.warning("the task hand-over could not be posted: %s", failure)
            problems.append(f"the list of open tasks ({failure.code}; `/crisis tasks` shows them)")
        try:
            upload_export(runtime, port, incident_id, "md", actor)
        except SlackFailure as failure:
            log.warning("export upload after resolve failed: %s", failure)
            problems.append("the Markdown export upload (run `/crisis export md` to try again)")
    refresh_homes(runtime, port, incident_id)
    return problems
