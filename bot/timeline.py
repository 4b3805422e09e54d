"""The append-only incident timeline. Call `record_event` in the same transaction as the change it records."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import TimelineEvent, utcnow


def record_event(
    session: Session,
    incident_id: int,
    kind: str,
    text: str = "",
    *,
    actor: str | None = None,
    data: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> TimelineEvent:
    """Append one event (kind like `incident.opened`, `role.assigned`, `draft.approved`)."""
    event = TimelineEvent(
        incident_id=incident_id, kind=kind, text=text, actor=actor, data=data or {}, at=at or utcnow()
    )
    session.add(event)
    session.flush()
    return event


def iter_events(session: Session, incident_id: int, batch: int = 1000) -> Iterator[TimelineEvent]:
    """Every event of an incident in time order, streamed in batches so memory stays flat."""
    query = (
        select(TimelineEvent)
        .where(TimelineEvent.incident_id == incident_id)
        .order_by(TimelineEvent.at, TimelineEvent.id)
        .execution_options(yield_per=batch)
    )
    yield from session.scalars(query)
