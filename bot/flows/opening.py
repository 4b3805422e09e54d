"""Opening a war room: record the incident, then create its channel, invite the plan's people, set
the topic, post and pin the brief, each step on the timeline.

When a step fails after Slack's retries the opener is told, the incident keeps `open_error`, and
running the same open again (same person, title, day) resumes from the failed step.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from bot.background.runtime import Runtime
from bot.crisis.channel_names import channel_name
from bot.crisis.incidents import (
    ALREADY_OPEN,
    IN_PROGRESS,
    STEP_BRIEF,
    STEP_CHANNEL,
    STEP_INVITE,
    STEP_PIN,
    STEP_TOPIC,
    IncidentError,
    IncidentSnapshot,
    done_steps,
    finish_open,
    incident_snapshot,
    record_brief,
    record_channel,
    record_open_failure,
    record_step,
    start_open,
)
from bot.crisis.roles import add_holders
from bot.flows.port import Brief, Notice, Opened, OpenFailed, SlackFailure, SlackPort
from bot.flows.tasks import post_playbook_tasks
from models import transaction

log = logging.getLogger(__name__)
MAX_NAME_ATTEMPTS = 30


def open_incident(runtime: Runtime, port: SlackPort, *, opener: str, title: str, severity: str | None,
                  playbook: str | None, description: str = "") -> int | None:
    """Record the incident and set up its war room; its id (None when nothing was started)."""
    start = start_open(runtime.sessions, runtime.plan, opener=opener, title=title, severity=severity,
                       playbook=playbook, description=description, drill=runtime.drill)
    if start.outcome == ALREADY_OPEN:
        port.tell(Notice(f"You already opened this incident today: <#{start.channel_id}>."))
        return start.incident_id
    if start.outcome == IN_PROGRESS:
        port.tell(Notice("This incident is being opened right now; its channel will appear in a moment. "
                         "If it does not within two minutes, run the same command again to finish it."))
        return start.incident_id
    complete_open(runtime, port, start.incident_id, opener)
    return start.incident_id


def complete_open(runtime: Runtime, port: SlackPort, incident_id: int, actor: str) -> bool:
    """Run every open step not yet done; on a Slack failure record it and tell the opener. True when open."""
    with transaction(runtime.sessions) as session:
        done = done_steps(session, incident_id)
    for step, run in OPEN_STEPS:
        if step in done:
            continue
        incident = _snapshot(runtime, incident_id)
        try:
            run(runtime, port, incident, actor)
        except (SlackFailure, IncidentError) as exc:
            with transaction(runtime.sessions) as session:
                record_open_failure(session, incident_id, step, str(exc), actor)
            port.tell(OpenFailed(incident.title, step, str(exc)))
            return False
    with transaction(runtime.sessions) as session:
        finish_open(session, runtime.plan, incident_id, actor)
    if problems := post_playbook_tasks(runtime, port, incident_id, actor):
        port.tell(Notice(f"The incident is open, but Slack would not post {', '.join(problems)}; "
                         "`/crisis tasks` lists every task."))
    if runtime.scheduler is not None:
        runtime.scheduler.sync()  # digests start now, not at the scheduler's next re-read
    port.tell(Opened(_snapshot(runtime, incident_id)))
    return True


def _snapshot(runtime: Runtime, incident_id: int) -> IncidentSnapshot:
    with transaction(runtime.sessions) as session:
        return incident_snapshot(session, runtime.plan, incident_id)


def _create_channel(runtime: Runtime, port: SlackPort, incident: IncidentSnapshot, actor: str) -> None:
    day = incident.opened_at.astimezone(runtime.plan.zone).date()
    settings = runtime.plan.channel
    for attempt in range(1, MAX_NAME_ATTEMPTS + 1):
        name = channel_name(settings.prefix, day, incident.title, attempt)
        created = port.create_channel(name, private=settings.private)
        if created is None:
            continue  # taken: try the next suffix
        with transaction(runtime.sessions) as session:
            record_channel(session, incident.id, created.id, created.name, actor, private=created.private)
        return
    raise IncidentError(f"every channel name up to {name} is taken")


def _invite_people(runtime: Runtime, port: SlackPort, incident: IncidentSnapshot, actor: str) -> None:
    assert incident.channel_id
    plan = runtime.plan
    group_members = {role_name: port.usergroup_members(role.usergroup)
                     for role_name, role in plan.roles.items() if role.usergroup}
    holders = {user for role in incident.roles for user in role.holders}
    everyone = [incident.opened_by, *sorted(holders), *(u for users in group_members.values() for u in users)]
    bot = port.bot_user_id()
    users = [user for user in dict.fromkeys(everyone) if user and user != bot]
    refused = port.invite(incident.channel_id, users) if users else []
    with transaction(runtime.sessions) as session:
        for role_name, members in group_members.items():
            add_holders(session, incident.id, role_name, [m for m in members if m != bot], actor,
                        reason=f" (user group {plan.roles[role_name].usergroup})")
        record_step(session, incident.id, STEP_INVITE, f"Invited {len(users) - len(refused)} people", actor,
                    {"users": [u for u in users if u not in refused], "refused": refused})


def _set_topic(runtime: Runtime, port: SlackPort, incident: IncidentSnapshot, actor: str) -> None:
    assert incident.channel_id
    port.describe_channel(incident)
    with transaction(runtime.sessions) as session:
        record_step(session, incident.id, STEP_TOPIC, "Topic and purpose set", actor)


def _post_brief(runtime: Runtime, port: SlackPort, incident: IncidentSnapshot, actor: str) -> None:
    assert incident.channel_id
    ts = port.post(incident.channel_id, Brief(incident, runtime.plan.digest_minutes(incident.severity)))
    with transaction(runtime.sessions) as session:
        record_brief(session, incident.id, ts, actor)


def _pin_brief(runtime: Runtime, port: SlackPort, incident: IncidentSnapshot, actor: str) -> None:
    assert incident.channel_id and incident.brief_ts
    port.pin(incident.channel_id, incident.brief_ts)
    with transaction(runtime.sessions) as session:
        record_step(session, incident.id, STEP_PIN, "Brief pinned", actor)


OPEN_STEPS: tuple[tuple[str, Callable[[Runtime, SlackPort, IncidentSnapshot, str], None]], ...] = (
    (STEP_CHANNEL, _create_channel),
    (STEP_INVITE, _invite_people),
    (STEP_TOPIC, _set_topic),
    (STEP_BRIEF, _post_brief),
    (STEP_PIN, _pin_brief),
)
