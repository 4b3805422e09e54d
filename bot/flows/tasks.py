"""Tasks in the room: each task's one message (posted, then updated in place), the playbook's tasks at
open, overdue reminders, the hand-over of open tasks at resolve, and archiving resolved channels."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy.orm import Session

from bot.background.runtime import Runtime
from bot.flows.port import SlackFailure, SlackPort
from bot.flows.task_messages import ArchiveNote, Handover, TaskMessage, TaskNudge
from bot.infra.logs import about_incident
from bot.tasks import archive, reminders
from bot.tasks.tasks import (
    create_playbook_tasks,
    get_task,
    incident_tasks,
    record_statement_target,
    set_task_message,
)
from models import Incident, transaction, utcnow
from models.tasks import TASK_OPEN

log = logging.getLogger(__name__)
NUDGE_RETRY = timedelta(minutes=1)
Claimed = TypeVar("Claimed")


def show_task(runtime: Runtime, port: SlackPort, task_id: int, now: datetime | None = None) -> None:
    """Post the task's message in its incident's channel, or update the one already posted."""
    with transaction(runtime.sessions) as session:
        task = get_task(session, task_id)
        incident = session.get(Incident, task.incident_id) if task else None
        channel_id = incident.channel_id if incident else None
    if task is None or not channel_id:
        return
    message = TaskMessage(task, now or utcnow())
    if task.slack_ts and task.channel_id:
        port.update(task.channel_id, task.slack_ts, message)
        return
    ts = port.post(channel_id, message)
    with transaction(runtime.sessions) as session:
        set_task_message(session, task_id, channel_id, ts)


def refresh_tasks(runtime: Runtime, port: SlackPort, task_ids: list[int]) -> list[str]:
    """Update several tasks' messages; what Slack refused (one failure does not stop the rest)."""
    problems = []
    for task_id in task_ids:
        try:
            show_task(runtime, port, task_id)
        except SlackFailure as failure:
            log.warning("task %d's message could not be updated: %s", task_id, failure)
            problems.append(f"task #{task_id} ({failure.code})")
    return problems


def post_playbook_tasks(runtime: Runtime, port: SlackPort, incident_id: int, actor: str) -> list[str]:
    """At open: the playbook's checklist as tasks, each its own message; what could not be posted."""
    with transaction(runtime.sessions) as session:
        record_statement_target(session, runtime.plan, incident_id, actor)
        create_playbook_tasks(session, runtime.plan, incident_id, actor)
        unposted = [t.id for t in incident_tasks(session, incident_id) if t.slack_ts is None and t.status == TASK_OPEN]
    return refresh_tasks(runtime, port, unposted)


def _claimed_each(
    runtime: Runtime, due: Callable[[Session], Iterable[int]], claim: Callable[[Session, int], Claimed | None],
) -> Iterator[tuple[int, Claimed]]:
    """The ids `due` lists, each with what `claim` took for it in a transaction of its own; an id another
    worker claimed first (`claim` gives None) is skipped."""
    with transaction(runtime.sessions) as session:
        ids = list(due(session))
    for item_id in ids:
        with transaction(runtime.sessions) as session:
            claimed = claim(session, item_id)
        if claimed is not None:
            yield item_id, claimed


def send_due_nudges(runtime: Runtime, port: SlackPort, now: datetime) -> int:
    """Send every reminder that is due (the scheduler runs this every minute); how many were sent."""
    sent = 0
    for task_id, nudge in _claimed_each(runtime, lambda session: reminders.due_nudges(session, now),
                                        lambda session, item_id: reminders.claim_nudge(session, item_id, now)):
        with about_incident(nudge.task.incident_id):
            try:
                target = nudge.task.owner if nudge.to == reminders.OWNER else nudge.incident_channel
                if not target:
                    continue
                port.post(target, TaskNudge(nudge.task, nudge.to == reminders.OWNER, nudge.incident_channel))
            except SlackFailure as failure:
                log.warning("reminder for task %d failed (%s); trying again in a minute", task_id, failure)
                with transaction(runtime.sessions) as session:
                    reminders.release_nudge(session, task_id, nudge.to, now + NUDGE_RETRY)
                continue
            sent += 1
            # The task's message gains *Snooze 30m* now that it is overdue.
            refresh_tasks(runtime, port, [task_id])
    return sent


def post_handover(runtime: Runtime, port: SlackPort, incident_id: int) -> None:
    """After the resolve summary: the tasks still open, each with *Follow-up* and *Drop* for the lead."""
    with transaction(runtime.sessions) as session:
        tasks = tuple(t for t in incident_tasks(session, incident_id) if t.status == TASK_OPEN)
        incident = session.get(Incident, incident_id)
        channel_id = incident.channel_id if incident else None
    if tasks and channel_id:
        port.post(channel_id, Handover(incident_id, tasks))


def update_handover(runtime: Runtime, port: SlackPort, incident_id: int, channel_id: str, ts: str) -> None:
    """Show the hand-over message again with the lead's choices so far."""
    with transaction(runtime.sessions) as session:
        tasks = tuple(t for t in incident_tasks(session, incident_id) if t.handed_over_at or t.status == TASK_OPEN)
    port.update(channel_id, ts, Handover(incident_id, tasks))


def archive_due_channels(runtime: Runtime, port: SlackPort, now: datetime) -> int:
    """Archive the channels of incidents resolved `channel.archive_after_days` ago, with a note first."""
    days = runtime.plan.channel.archive_after_days
    if days is None:
        return 0
    archived = 0
    for incident_id, channel_id in _claimed_each(
            runtime, lambda session: archive.due_archives(session, now - timedelta(days=days)),
            lambda session, item_id: archive.claim_archive(session, item_id, now)):
        try:
            with transaction(runtime.sessions) as session:
                noted = archive.was_noted(session, incident_id)
            if not noted:
                port.post(channel_id, ArchiveNote(days))
                with transaction(runtime.sessions) as session:
                    archive.record_note(session, incident_id, now)
            port.archive(channel_id)
        except SlackFailure as failure:
            log.warning("archiving incident %d's channel failed: %s", incident_id, failure)
            with transaction(runtime.sessions) as session:
                archive.record_failure(session, incident_id, str(failure), retry=failure.transient)
            continue
        with transaction(runtime.sessions) as session:
            archive.record_archived(session, incident_id, now)
        archived += 1
    return archived

