"""Keeping the room current: the pinned brief and the channel's topic, and the Home tabs of the people
concerned, after anything that changes what they show (severity, roles, resolve)."""

from __future__ import annotations

import logging

from bot.background.runtime import Runtime
from bot.crisis.incidents import IncidentSnapshot, incident_snapshot
from bot.flows.port import Brief, SlackFailure, SlackPort
from bot.tasks.tasks import people_concerned
from models import reading, transaction

log = logging.getLogger(__name__)


def snapshot(runtime: Runtime, incident_id: int) -> IncidentSnapshot:
    """The incident as the room sees it now (a read: `/crisis roles` answers with it inside the ack)."""
    with reading(runtime.sessions) as session:
        return incident_snapshot(session, runtime.plan, incident_id)


def refresh_room(runtime: Runtime, port: SlackPort, incident_id: int) -> list[str]:
    """Bring the pinned brief and the channel's topic up to date; what Slack would not update, in words."""
    incident = snapshot(runtime, incident_id)
    problems: list[str] = []
    if not incident.channel_id:
        return problems
    if incident.brief_ts:
        try:
            port.update(incident.channel_id, incident.brief_ts,
                        Brief(incident, runtime.plan.digest_minutes(incident.severity)))
        except SlackFailure as failure:
            log.warning("brief update failed for incident %s: %s", incident_id, failure)
            problems.append(f"the brief ({failure})")
    try:
        port.describe_channel(incident)
    except SlackFailure as failure:
        log.warning("topic update failed for incident %s: %s", incident_id, failure)
        problems.append(f"the topic ({failure})")
    return problems


def refresh_homes(runtime: Runtime, port: SlackPort, incident_id: int | None) -> None:
    """Re-publish the Home tab of everyone concerned by the incident; one refusal does not stop the rest."""
    if incident_id is None:
        return
    with transaction(runtime.sessions) as session:
        people = people_concerned(session, incident_id)
    for user_id in people:
        try:
            port.publish_home(user_id)
        except SlackFailure as failure:
            log.warning("the App Home of %s could not be published: %s", user_id, failure)
