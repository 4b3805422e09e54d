"""Incidents: finding, opening, running and resolving them. Plain values in, plain values out."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, not_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bot.crisis.channel_names import open_request_key
from bot.crisis.plan import SEVERITIES, Plan
from bot.crisis.roles import LEAD, RoleError, RoleHolders, add_holders, lead_of, leads_of, plan_holders, role_table
from bot.crisis.timeline import (
    INCIDENT_OPEN_FAILED,
    INCIDENT_OPEN_STEP,
    INCIDENT_OPENED,
    INCIDENT_READY,
    INCIDENT_RESOLVED,
    SEVERITY_CHANGED,
    record_event,
)
from bot.infra.mrkdwn import escape_mrkdwn
from models import (
    Decision,
    Fact,
    Incident,
    KeyMessage,
    RoleAssignment,
    Rumour,
    TimelineEvent,
    rows_changed,
    transaction,
    utcnow,
)
from models.incidents import OPEN, OPENING, RESOLVED

TITLE_MAX = 150  # a Block Kit header holds 150 characters, and the title heads the brief
DESCRIPTION_MAX = 2000
DEFAULT_SEVERITY = "sev3"
_SEVERITY_LIKE = re.compile(r"^sev\S*$", re.IGNORECASE)

# The steps of an open, in order. Each done step is a timeline event, so a retry resumes after it.
STEP_CHANNEL, STEP_INVITE, STEP_TOPIC, STEP_BRIEF, STEP_PIN = "channel", "invite", "topic", "brief", "pin"
OPEN_STEPS = (STEP_CHANNEL, STEP_INVITE, STEP_TOPIC, STEP_BRIEF, STEP_PIN)

# What start_open found or did.
CREATED, RESUMED, ALREADY_OPEN, IN_PROGRESS = "created", "resumed", "already_open", "in_progress"
# An open whose process has said nothing for this long is taken to have died mid-open
# (Slack retries of one step, honouring Retry-After, stay well inside it).
STALE_OPEN = timedelta(minutes=2)


class IncidentError(Exception):
    """A request about an incident that cannot be done; the message says why, for the person who asked."""


# ---------------------------------------------------------------------------------------------
# Finding
# ---------------------------------------------------------------------------------------------


def find_incident_by_channel(session: Session, channel_id: str) -> Incident | None:
    """The incident whose war room is `channel_id`, if any."""
    if not channel_id:
        return None
    return session.scalars(select(Incident).where(Incident.channel_id == channel_id)).first()


def visible_to(plan: Plan, viewer: str) -> ColumnElement[bool]:
    """SQL condition: the incident's channel is public, or `viewer` is one of its people.

    Its people are the opener and everyone ever given a role: opening and assigning invite exactly
    them, so this is who was let into a private channel, known without asking Slack. Someone a member
    added by hand is not known here and does not see the incident listed (the channel still works).
    """
    made_private = (
        select(TimelineEvent.data["private"].as_boolean())
        .where(
            TimelineEvent.incident_id == Incident.id,
            TimelineEvent.kind == INCIDENT_OPEN_STEP,
            TimelineEvent.data["step"].as_string() == STEP_CHANNEL,
        )
        .limit(1)
        .scalar_subquery()
    )
    # No channel yet, or one made before this was recorded: as the plan makes them.
    private = func.coalesce(made_private, plan.channel.private)
    has_role = (
        select(RoleAssignment.id)
        .where(RoleAssignment.incident_id == Incident.id, RoleAssignment.user_id == viewer)
        .exists()
    )
    return or_(not_(private), Incident.opened_by == viewer, has_role)


def open_incident_channels(session: Session, plan: Plan, viewer: str, limit: int = 5) -> list[str]:
    """Channel ids of the most recently opened open incidents `viewer` may see."""
    query = (
        select(Incident.channel_id)
        .where(Incident.status == OPEN, Incident.channel_id.is_not(None), visible_to(plan, viewer))
        .order_by(Incident.opened_at.desc())
        .limit(limit)
    )
    return [channel_id for channel_id in session.scalars(query) if channel_id]


# ---------------------------------------------------------------------------------------------
# What an incident looks like to the people in it
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IncidentSnapshot:
    """Everything the brief, the topic and the summaries show about one incident."""

    id: int
    title: str
    description: str
    severity: str
    severity_label: str
    playbook: str | None
    playbook_title: str | None
    playbook_description: str
    checklist: tuple[str, ...]
    status: str
    open_error: str | None
    channel_id: str | None
    channel_name: str | None
    brief_ts: str | None
    opened_by: str
    opened_at: datetime
    resolved_at: datetime | None
    resolved_by: str | None
    summary: str | None
    next_digest_at: datetime | None
    roles: tuple[RoleHolders, ...]
    statement_due_at: datetime | None = None  # when the first holding statement is due (plan target)

    @property
    def lead(self) -> str | None:
        return next((r.holders[0] for r in self.roles if r.role == LEAD and r.holders), None)


def severity_label(plan: Plan, severity: str) -> str:
    level = plan.severities.get(severity)  # type: ignore[call-overload]
    return level.label if level else severity


def incident_snapshot(session: Session, plan: Plan, incident_id: int) -> IncidentSnapshot:
    """The incident as the room sees it now."""
    incident = session.get(Incident, incident_id)
    if incident is None:
        raise IncidentError(f"Incident #{incident_id} does not exist.")
    playbook = plan.playbooks.get(incident.playbook) if incident.playbook else None
    return IncidentSnapshot(
        id=incident.id,
        title=incident.title,
        description=incident.description or "",
        severity=incident.severity,
        severity_label=severity_label(plan, incident.severity),
        playbook=incident.playbook,
        playbook_title=playbook.title if playbook else None,
        playbook_description=playbook.description if playbook else "",
        checklist=tuple(i if isinstance(i, str) else i.text for i in playbook.checklist) if playbook else (),
        status=incident.status,
        open_error=incident.open_error,
        channel_id=incident.channel_id,
        channel_name=incident.channel_name,
        brief_ts=incident.brief_ts,
        opened_by=incident.opened_by,
        opened_at=incident.opened_at,
        resolved_at=incident.resolved_at,
        resolved_by=incident.resolved_by,
        summary=incident.summary,
        next_digest_at=incident.next_digest_at,
        roles=tuple(role_table(session, plan, incident.id)),
        statement_due_at=_statement_due(plan, incident),
    )


def _statement_due(plan: Plan, incident: Incident) -> datetime | None:
    minutes = plan.first_statement_minutes(incident.severity)
    return incident.opened_at + timedelta(minutes=minutes) if minutes is not None else None


# ---------------------------------------------------------------------------------------------
# Opening
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OpenArgs:
    """`/crisis open [sev1-4] [playbook] <title>`, parsed. An empty title means "open the form"."""

    severity: str | None
    playbook: str | None
    title: str


def parse_open_args(text: str, playbooks: Iterable[str]) -> OpenArgs:
    """Parse the words after `open`; severity and playbook may come in either order before the title."""
    known_playbooks = {name.lower() for name in playbooks}
    severity: str | None = None
    playbook: str | None = None
    words = text.split()
    taken = 0
    for word in words[:2]:
        lowered = word.lower()
        if severity is None and lowered in SEVERITIES:
            severity = lowered
        elif playbook is None and lowered in known_playbooks:
            playbook = lowered
        elif severity is None and _SEVERITY_LIKE.match(word) and taken == 0:
            raise IncidentError(
                f"`{escape_mrkdwn(word[:20])}` is not a severity: use sev1, sev2, sev3 or sev4."
            )
        else:
            break
        taken += 1
    title = " ".join(words[taken:])
    if len(title) > TITLE_MAX:
        raise IncidentError(f"The title is {len(title)} characters; keep it to {TITLE_MAX}.")
    return OpenArgs(severity, playbook, title)


def choose_severity(plan: Plan, severity: str | None, playbook: str | None) -> str:
    """The severity asked for, else the playbook's default, else sev3."""
    if severity:
        return severity
    if playbook and playbook in plan.playbooks:
        return plan.playbooks[playbook].severity
    return DEFAULT_SEVERITY


def validate_open(
    plan: Plan, title: str, severity: str | None, playbook: str | None, description: str = ""
) -> dict[str, str]:
    """Field → problem for an open request (the modal shows these inline); {} when it can go ahead."""
    problems: dict[str, str] = {}
    if not title.strip():
        problems["title"] = "Give the incident a title."
    elif len(title.strip()) > TITLE_MAX:
        problems["title"] = f"Keep the title to {TITLE_MAX} characters."
    if severity and severity not in SEVERITIES:
        problems["severity"] = "Choose sev1, sev2, sev3 or sev4."
    if playbook and playbook not in plan.playbooks:
        problems["playbook"] = f"`{escape_mrkdwn(playbook[:30])}` is not a playbook in the plan."
    if len(description) > DESCRIPTION_MAX:
        problems["description"] = f"Keep the description to {DESCRIPTION_MAX} characters."
    return problems


@dataclass(frozen=True)
class OpenStart:
    """What `start_open` found or did: `outcome` is created, resumed, already_open or in_progress."""

    incident_id: int
    outcome: str
    channel_id: str | None
    open_error: str | None


def _day(plan: Plan, at: datetime) -> date:
    return at.astimezone(plan.zone).date()


def start_open(
    sessions: sessionmaker[Session],
    plan: Plan,
    *,
    opener: str,
    title: str,
    severity: str | None,
    playbook: str | None,
    description: str = "",
    now: datetime | None = None,
    drill: bool = False,
) -> OpenStart:
    """Record a new incident (status `opening`), or find the one this same request already made.

    The same opener opening the same title on the same day is the same request: a half-opened one
    is resumed (claimed by compare-and-set, so two retries cannot both resume it), an open one is
    pointed to. The unique request_key makes this hold across processes.
    """
    now = now or utcnow()
    title = " ".join(title.split())
    base_key = open_request_key(opener, title, _day(plan, now))
    for _attempt in range(3):
        try:
            with transaction(sessions) as session:
                return _start_open(
                    session, plan, base_key, opener, title, severity, playbook, description, now, drill
                )
        except IntegrityError:
            continue  # another process recorded the same request first: look again
    raise IncidentError("Could not record the incident; please try again.")


def _start_open(
    session: Session,
    plan: Plan,
    base_key: str,
    opener: str,
    title: str,
    severity: str | None,
    playbook: str | None,
    description: str,
    now: datetime,
    drill: bool = False,
) -> OpenStart:
    same = session.scalars(
        select(Incident).where(Incident.request_key.like(f"{base_key}%")).order_by(Incident.id)
    ).all()
    for incident in same:
        if incident.status == OPEN:
            return OpenStart(incident.id, ALREADY_OPEN, incident.channel_id, None)
        if incident.status == OPENING:
            previous_error = incident.open_error
            if previous_error is None:
                heartbeat = incident.open_attempt_at
                if heartbeat is not None and now - heartbeat < STALE_OPEN:
                    return OpenStart(incident.id, IN_PROGRESS, incident.channel_id, None)
                # Silent for long: the process running it stopped mid-open (crash, kill -9, deploy).
                previous_error = "the open stopped before finishing"
            # Compare-and-set on the error and the heartbeat: of several retries, one takes the open over.
            claimed = rows_changed(
                session,
                update(Incident)
                .where(
                    Incident.id == incident.id,
                    Incident.status == OPENING,
                    Incident.open_error.is_(None) if incident.open_error is None
                    else Incident.open_error == incident.open_error,
                    Incident.open_attempt_at.is_(None) if incident.open_attempt_at is None
                    else Incident.open_attempt_at == incident.open_attempt_at,
                )
                .values(open_error=None, open_attempt_at=now),
            )
            if not claimed:
                return OpenStart(incident.id, IN_PROGRESS, incident.channel_id, None)
            record_event(
                session,
                incident.id,
                INCIDENT_OPEN_STEP,
                "Retrying the open",
                actor=opener,
                data={"step": "retry", "previous_error": previous_error},
                at=now,
            )
            return OpenStart(incident.id, RESUMED, incident.channel_id, previous_error)
    # Every earlier one is resolved: a new incident, with its own key.
    key = base_key if not same else f"{base_key}:{len(same)}"
    chosen = choose_severity(plan, severity, playbook)
    incident = Incident(
        title=title,
        description=description.strip(),
        severity=chosen,
        playbook=playbook,
        status=OPENING,
        request_key=key,
        opened_by=opener,
        opened_at=now,
        open_attempt_at=now,
        is_drill=drill,
    )
    session.add(incident)
    session.flush()
    record_event(
        session,
        incident.id,
        INCIDENT_OPENED,
        f"Incident opened: {title}",
        actor=opener,
        data={"severity": chosen, "playbook": playbook},
        at=now,
    )
    for role, users in plan_holders(plan, opener).items():
        add_holders(session, incident.id, role, users, opener, at=now, reason=" (from the plan)")
    return OpenStart(incident.id, CREATED, None, None)


def done_steps(session: Session, incident_id: int) -> set[str]:
    """The open steps already completed for this incident."""
    events = session.scalars(
        select(TimelineEvent).where(
            TimelineEvent.incident_id == incident_id, TimelineEvent.kind == INCIDENT_OPEN_STEP
        )
    )
    return {str(event.data.get("step")) for event in events}


def record_step(
    session: Session, incident_id: int, step: str, text: str, actor: str, data: dict[str, Any] | None = None
) -> None:
    """Mark one open step done (a timeline event), and beat the open's heartbeat."""
    now = utcnow()
    session.execute(update(Incident).where(Incident.id == incident_id).values(open_attempt_at=now))
    record_event(
        session, incident_id, INCIDENT_OPEN_STEP, text,
        actor=actor, data={"step": step, **(data or {})}, at=now,
    )


def record_channel(
    session: Session, incident_id: int, channel_id: str, channel_name: str, actor: str, *, private: bool
) -> None:
    """The incident channel exists: remember it, and whether it is private (see `visible_to`), with the
    step event."""
    incident = session.get(Incident, incident_id)
    if incident is None:
        raise IncidentError(f"Incident #{incident_id} does not exist.")
    incident.channel_id, incident.channel_name = channel_id, channel_name
    record_step(
        session,
        incident_id,
        STEP_CHANNEL,
        f"Channel #{channel_name} created",
        actor,
        {"channel": channel_id, "name": channel_name, "private": private},
    )


def record_brief(session: Session, incident_id: int, ts: str, actor: str) -> None:
    """The brief is posted: remember its ts (it is updated as roles and severity change)."""
    incident = session.get(Incident, incident_id)
    if incident is None:
        raise IncidentError(f"Incident #{incident_id} does not exist.")
    incident.brief_ts = ts
    record_step(session, incident_id, STEP_BRIEF, "Brief posted", actor, {"ts": ts})


def record_open_failure(session: Session, incident_id: int, step: str, error: str, actor: str) -> None:
    """An open step failed after retries: the incident stays `opening` and says what failed."""
    incident = session.get(Incident, incident_id)
    if incident is None:
        return
    incident.open_error = f"{step}: {error}"
    record_event(
        session,
        incident_id,
        INCIDENT_OPEN_FAILED,
        f"Opening failed at {step}: {error}",
        actor=actor,
        data={"step": step, "error": error},
    )


def finish_open(session: Session, plan: Plan, incident_id: int, actor: str) -> bool:
    """Every step is done: the incident is open and its first digest is due. False if it already was."""
    now = utcnow()
    incident = session.get(Incident, incident_id)
    if incident is None:
        return False
    changed = rows_changed(
        session,
        update(Incident)
        .where(Incident.id == incident_id, Incident.status == OPENING)
        .values(
            status=OPEN,
            open_error=None,
            next_digest_at=incident.opened_at + timedelta(minutes=plan.digest_minutes(incident.severity)),
        ),
    )
    if changed:
        session.expire(incident)
        record_event(session, incident_id, INCIDENT_READY, "The war room is ready", actor=actor, at=now)
    return bool(changed)


# ---------------------------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SeverityChange:
    incident_id: int
    old: str
    new: str
    next_digest_at: datetime


def change_severity(
    session: Session, plan: Plan, incident_id: int, severity: str, actor: str
) -> SeverityChange:
    """Change the severity: a decision (kind "severity") on the timeline, and digests rescheduled."""
    severity = severity.lower()
    if severity not in SEVERITIES:
        raise IncidentError(
            f"`{escape_mrkdwn(severity[:20])}` is not a severity: use sev1, sev2, sev3 or sev4."
        )
    incident = session.get(Incident, incident_id, with_for_update=True)
    if incident is None:
        raise IncidentError(f"Incident #{incident_id} does not exist.")
    old = incident.severity
    if old == severity:
        raise IncidentError(f"The incident is already {severity} ({severity_label(plan, severity)}).")
    now = utcnow()
    incident.severity = severity
    incident.next_digest_at = now + timedelta(minutes=plan.digest_minutes(severity))
    text = f"Severity {old} → {severity} ({severity_label(plan, severity)})"
    decision = Decision(incident_id=incident_id, kind="severity", text=text, decided_by=actor, decided_at=now)
    session.add(decision)
    session.flush()
    record_event(
        session,
        incident_id,
        SEVERITY_CHANGED,
        text,
        actor=actor,
        data={"from": old, "to": severity, "decision_id": decision.id},
        at=now,
    )
    return SeverityChange(incident_id, old, severity, incident.next_digest_at)


# ---------------------------------------------------------------------------------------------
# Resolving
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResolveSummary:
    """What the resolve summary shows."""

    incident: IncidentSnapshot
    duration: timedelta
    decisions: int
    facts: int
    key_messages: int
    rumours: dict[str, int]


def _count(session: Session, model: Any, incident_id: int) -> int:
    return int(
        session.scalar(select(func.count()).select_from(model).where(model.incident_id == incident_id)) or 0
    )


def resolve_incident(
    session: Session, plan: Plan, incident_id: int, actor: str, summary: str = ""
) -> ResolveSummary:
    """Resolve the incident (its lead only): stops its digests and records who, when and why."""
    incident = session.get(Incident, incident_id, with_for_update=True)
    if incident is None:
        raise IncidentError(f"Incident #{incident_id} does not exist.")
    lead = lead_of(session, incident_id)
    if lead != actor:
        who = f"the lead, <@{lead}>" if lead else "the lead (nobody holds the role: `assign lead` first)"
        raise RoleError(f"Only {who}, can resolve this incident.")
    now = utcnow()
    changed = rows_changed(
        session,
        update(Incident)
        .where(Incident.id == incident_id, Incident.status != RESOLVED)
        .values(
            status=RESOLVED,
            resolved_at=now,
            resolved_by=actor,
            summary=summary.strip() or None,
            next_digest_at=None,
        ),
    )
    if not changed:
        raise IncidentError("This incident is already resolved.")
    session.expire(incident)
    record_event(
        session, incident_id, INCIDENT_RESOLVED, summary.strip() or "Incident resolved", actor=actor, at=now
    )
    return resolve_summary(session, plan, incident_id)


def resolve_summary(session: Session, plan: Plan, incident_id: int) -> ResolveSummary:
    """The figures of a resolved incident's summary."""
    snapshot = incident_snapshot(session, plan, incident_id)
    rumours: dict[str, int] = {}
    for status, count in session.execute(
        select(Rumour.status, func.count()).where(Rumour.incident_id == incident_id).group_by(Rumour.status)
    ):
        rumours[status] = int(count)
    end = snapshot.resolved_at or utcnow()
    return ResolveSummary(
        incident=snapshot,
        duration=end - snapshot.opened_at,
        decisions=_count(session, Decision, incident_id),
        facts=_count(session, Fact, incident_id),
        key_messages=_count(session, KeyMessage, incident_id),
        rumours=rumours,
    )


# ---------------------------------------------------------------------------------------------
# App Home
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IncidentLine:
    """One incident in a list: the App Home's open and recently resolved incidents."""

    id: int
    title: str
    severity: str
    severity_label: str
    status: str
    channel_id: str | None
    opened_at: datetime
    resolved_at: datetime | None
    lead: str | None


def home_incidents(
    session: Session, plan: Plan, viewer: str, resolved_limit: int = 10
) -> tuple[list[IncidentLine], list[IncidentLine]]:
    """Open incidents (newest first) and the last `resolved_limit` resolved ones, of those `viewer` may see."""
    visible = visible_to(plan, viewer)
    active = session.scalars(
        select(Incident)
        .where(Incident.status.in_((OPEN, OPENING)), visible)
        .order_by(Incident.opened_at.desc())
        .limit(50)
    ).all()
    resolved = session.scalars(
        select(Incident)
        .where(Incident.status == RESOLVED, visible)
        .order_by(Incident.resolved_at.desc())
        .limit(resolved_limit)
    ).all()

    leads = leads_of(session, [incident.id for incident in (*active, *resolved)])

    def line(incident: Incident) -> IncidentLine:
        return IncidentLine(
            incident.id,
            incident.title,
            incident.severity,
            severity_label(plan, incident.severity),
            incident.status,
            incident.channel_id,
            incident.opened_at,
            incident.resolved_at,
            leads.get(incident.id),
        )

    return [line(i) for i in active], [line(i) for i in resolved]
