"""Archiving an incident channel `channel.archive_after_days` after resolve (off unless the plan sets it).

One row per incident in `channel_archives`: claimed (insert, unique per incident, so two schedulers
never both archive), noted (the note was posted), archived. A transient Slack failure frees the claim
to try again at the next run; a lasting one is kept with its error and not retried.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.crisis.timeline import record_event
from models import ChannelArchive, Incident
from models.incidents import RESOLVED

CHANNEL_ARCHIVED = "channel.archived"


def due_archives(session: Session, resolved_before: datetime) -> list[int]:
    """Incidents resolved before `resolved_before` whose channel has not been archived (or tried)."""
    tried = select(ChannelArchive.incident_id)
    return list(session.scalars(
        select(Incident.id).where(Incident.status == RESOLVED, Incident.resolved_at <= resolved_before,
                                  Incident.channel_id.is_not(None), Incident.id.not_in(tried))
        .order_by(Incident.id).limit(50)
    ))


def claim_archive(session: Session, incident_id: int, now: datetime) -> str | None:
    """Claim the incident's archiving; its channel id, or None when another run has it."""
    incident = session.get(Incident, incident_id)
    if incident is None or not incident.channel_id:
        return None
    try:
        with session.begin_nested():
            session.add(ChannelArchive(incident_id=incident_id, claimed_at=now))
    except IntegrityError:
        return None
    return incident.channel_id


def was_noted(session: Session, incident_id: int) -> bool:
    row = session.get(ChannelArchive, incident_id)
    return row is not None and row.noted_at is not None


def record_note(session: Session, incident_id: int, now: datetime) -> None:
    row = session.get(ChannelArchive, incident_id)
    if row is not None:
        row.noted_at = now


def record_archived(session: Session, incident_id: int, now: datetime) -> None:
    row = session.get(ChannelArchive, incident_id)
    if row is not None:
        row.archived_at, row.error = now, None
    record_event(session, incident_id, CHANNEL_ARCHIVED, "The channel was archived", at=now)


def record_failure(session: Session, incident_id: int, error: str, *, retry: bool) -> None:
    """Archiving failed: free the claim to try again (transient), or keep the error (lasting)."""
    if retry:
        row = session.get(ChannelArchive, incident_id)
        if row is not None and row.noted_at is None:
            session.execute(delete(ChannelArchive).where(ChannelArchive.incident_id == incident_id))
            return
    row = session.get(ChannelArchive, incident_id)
    if row is not None:
        row.error = error[:500]
