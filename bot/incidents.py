"""Incidents: finding, opening, running and resolving them. Plain values in, plain values out."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Incident
from models.incidents import OPEN


def find_incident_by_channel(session: Session, channel_id: str) -> Incident | None:
    """The incident whose war room is `channel_id`, if any."""
    if not channel_id:
        return None
    return session.scalars(select(Incident).where(Incident.channel_id == channel_id)).first()


def open_incident_channels(session: Session, limit: int = 5) -> list[str]:
    """Channel ids of the most recently opened open incidents."""
    query = (
        select(Incident.channel_id)
        .where(Incident.status == OPEN, Incident.channel_id.is_not(None))
        .order_by(Incident.opened_at.desc())
        .limit(limit)
    )
    return [channel_id for channel_id in session.scalars(query) if channel_id]
