"""The append-only incident timeline. Call `record_event` in the same transaction as the change it records."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, Protocol, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.queue.jobs import current_job
from models import TimelineEvent, utcnow

# Event kinds, shared by every capability and read by the export's metrics.
INCIDENT_OPENED = "incident.opened"          # the record exists (before any Slack call)
INCIDENT_OPEN_STEP = "incident.step"         # one step of the open: channel, invite, topic, brief, pin
INCIDENT_OPEN_FAILED = "incident.open_failed"
INCIDENT_READY = "incident.ready"            # every step done; the room is live
ROLE_ASSIGNED = "role.assigned"
ROLE_ENDED = "role.ended"
SEVERITY_CHANGED = "severity.changed"
STATUS_POSTED = "status.posted"
FACT_ADDED = "fact.added"
MESSAGE_ADDED = "message.added"
RUMOUR_TRACKED = "rumour.tracked"
RUMOUR_OUTCOME = "rumour.outcome"
DECISION_LOGGED = "decision.logged"
MESSAGE_LOGGED = "timeline.message"          # "Add to timeline" shortcut; `at` is the message's own time
INCIDENT_RESOLVED = "incident.resolved"
DIGEST_POSTED = "digest.posted"
DIGEST_FAILED = "digest.failed"
DRAFT_REQUESTED = "draft.requested"
DRAFT_READY = "draft.ready"
DRAFT_FAILED = "draft.failed"
DRAFT_EDITED = "draft.edited"
DRAFT_REGENERATED = "draft.regenerated"
DRAFT_APPROVED = "draft.approved"
DRAFT_REJECTED = "draft.rejected"
EXPORT_UPLOADED = "export.uploaded"


def record_event(
    session: Session,
    incident_id: int,
    kind: str,
    text: str = "",
    *,
    actor: str | None = None,
    data: dict[str, Any] | None = None,
    at: datetime | None = None,
    request_key: str | None = None,
) -> TimelineEvent:
    """Append one event (kind like `incident.opened`, `role.assigned`, `draft.approved`)."""
    event = TimelineEvent(
        incident_id=incident_id, kind=kind, text=text, actor=actor, data=data or {}, at=at or utcnow(),
        request_key=request_key,
    )
    session.add(event)
    session.flush()
    return event


def once_per_job(session: Session, kind: str) -> tuple[str | None, TimelineEvent | None]:
    """For a change that a queued job makes once (a fact, a decision, a rumour, a logged message): the
    request key to record its event with, and the event if an earlier run of the same job already
    recorded it. Jobs run at least once: a worker that dies after committing a change but before
    marking its job done has the job run again (after `jobs.STALE_AFTER`), and that run must find the
    change made rather than make it twice. Outside a worker's job: (None, None)."""
    job_id = current_job()
    if job_id is None:
        return None, None
    key = f"job:{job_id}:{kind}"
    return key, session.scalars(select(TimelineEvent).where(TimelineEvent.request_key == key)).first()


class _Stored(Protocol):
    @property
    def id(self) -> int: ...


Row = TypeVar("Row", bound=_Stored)


def add_once_per_job(
    session: Session, incident_id: int, kind: str, text: str, actor: str, model: type[Row], id_field: str,
    make: Callable[[datetime], Row], data: dict[str, Any] | None = None,
) -> Row:
    """Add the row `make(now)` with its timeline event (`kind`; the row's id under `id_field`, then `data`),
    once per queued job: a job run again gets back the row its first run added (see `once_per_job`)."""
    key, earlier = once_per_job(session, kind)
    if earlier is not None:
        existing = session.get(model, int(earlier.data[id_field]))
        assert existing is not None
        return existing
    now = utcnow()
    row = make(now)
    session.add(row)
    session.flush()
    record_event(session, incident_id, kind, text, actor=actor, data={id_field: row.id, **(data or {})}, at=now,
                 request_key=key)
    return row


def iter_events(session: Session, incident_id: int, batch: int = 1000) -> Iterator[TimelineEvent]:
    """Every event of an incident in time order, streamed in batches so memory stays flat."""
    query = (
        select(TimelineEvent)
        .where(TimelineEvent.incident_id == incident_id)
        .order_by(TimelineEvent.at, TimelineEvent.id)
        .execution_options(yield_per=batch)
    )
    yield from session.scalars(query)
