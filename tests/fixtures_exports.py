"""A resolved incident with a bit of everything, written straight into the models (fast, deterministic)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from bot.crisis import timeline
from models import (
    Decision,
    Draft,
    Fact,
    Incident,
    KeyMessage,
    Mention,
    RoleAssignment,
    Rumour,
    SlackUser,
    TimelineEvent,
    transaction,
)
from models.drafts import APPROVED, REJECTED
from models.incidents import REFUTED, RESOLVED, RUMOUR_OPEN
from tests.conftest import APPROVER, DRAFTER, LEAD, MONITOR

HOSTILE_SCRIPT = "<script>alert(1)</script>"
HOSTILE_PING = "<!channel> everyone look"
HOSTILE_FORMULA = '=HYPERLINK("http://x","y")'
OPENED_AT = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)


@dataclass
class SeededIncident:
    id: int
    channel_name: str
    event_ids: list[int]


def _minutes(n: float) -> datetime:
    return OPENED_AT + timedelta(minutes=n)


def seed_incident(sessions: sessionmaker[Session], *, extra_events: int = 0) -> SeededIncident:
    """Opened 09:00 UTC, acknowledged 09:04, statement approved 09:40, resolved 11:30; hostile text."""
    with transaction(sessions) as session:
        incident = Incident(
            title=f"Flights delayed {HOSTILE_SCRIPT}",
            severity="sev2",
            playbook="outage",
            status=RESOLVED,
            channel_id="CINC0001",
            channel_name="crisis-20240501-flights-delayed",
            opened_by=LEAD,
            opened_at=OPENED_AT,
            resolved_at=_minutes(150),
            resolved_by=LEAD,
            summary="Back to normal",
        )
        session.add(incident)
        session.flush()
        session.add(SlackUser(user_id=LEAD, name="lena", real_name="Lena Lead"))
        session.add(SlackUser(user_id=APPROVER, name="abe", real_name="Abe Approver"))
        events = [
            (0, timeline.INCIDENT_OPENED, "Incident opened", LEAD, {"severity": "sev3"}),
            (0.1, timeline.ROLE_ASSIGNED, "lead: Lena", LEAD, {"role": "lead", "user": LEAD}),
            (0.2, timeline.INCIDENT_READY, "War room ready", None, {}),
            (4, timeline.FACT_ADDED, HOSTILE_SCRIPT, MONITOR, {}),
            (10, timeline.SEVERITY_CHANGED, "sev3 → sev2", LEAD, {"from": "sev3", "to": "sev2"}),
            (12, timeline.RUMOUR_TRACKED, HOSTILE_PING, MONITOR, {}),
            (20, timeline.DRAFT_REQUESTED, HOSTILE_FORMULA, DRAFTER, {"draft_id": 1}),
            (25, timeline.DRAFT_REJECTED, "-too cold", APPROVER, {"reason": "too cold"}),
            (40, timeline.DRAFT_APPROVED, "+approved", APPROVER, {}),
            (60, timeline.DECISION_LOGGED, "@Offer refunds", LEAD, {}),
            (90, timeline.RUMOUR_OUTCOME, "refuted", LEAD, {}),
            (150, timeline.INCIDENT_RESOLVED, "Back to normal\nall good", LEAD, {}),
        ]
        ids = [
            timeline.record_event(
                session, incident.id, kind, text, actor=actor, data=data, at=_minutes(at)
            ).id
            for at, kind, text, actor, data in events
        ]
        extra = [
            TimelineEvent(
                incident_id=incident.id,
                kind=timeline.STATUS_POSTED,
                text=f"update {n}",
                actor=LEAD,
                data={},
                at=_minutes(100 + n * 0.001),
            )
            for n in range(extra_events)
        ]
        session.add_all(extra)
        session.flush()
        ids += [event.id for event in extra]
        session.add_all(
            [
                RoleAssignment(
                    incident_id=incident.id,
                    role="lead",
                    user_id=LEAD,
                    assigned_by=LEAD,
                    assigned_at=_minutes(0.1),
                ),
                RoleAssignment(
                    incident_id=incident.id,
                    role="drafter",
                    user_id=MONITOR,
                    assigned_by=LEAD,
                    assigned_at=_minutes(1),
                    ended_at=_minutes(5),
                    ended_by=LEAD,
                ),
                RoleAssignment(
                    incident_id=incident.id,
                    role="drafter",
                    user_id=DRAFTER,
                    assigned_by=LEAD,
                    assigned_at=_minutes(5),
                ),
                Fact(incident_id=incident.id, text=HOSTILE_SCRIPT, added_by=MONITOR, added_at=_minutes(4)),
                KeyMessage(
                    incident_id=incident.id,
                    text="We are sorry <@ULEAD01>",
                    added_by=LEAD,
                    added_at=_minutes(6),
                ),
                Decision(
                    incident_id=incident.id, text="@Offer refunds", decided_by=LEAD, decided_at=_minutes(60)
                ),
                Rumour(
                    incident_id=incident.id,
                    claim=HOSTILE_PING,
                    status=REFUTED,
                    outcome="Not true",
                    created_by=MONITOR,
                    created_at=_minutes(12),
                    decided_by=LEAD,
                    decided_at=_minutes(90),
                ),
                Rumour(
                    incident_id=incident.id,
                    claim="Pilots on strike",
                    status=RUMOUR_OPEN,
                    created_by=MONITOR,
                    created_at=_minutes(30),
                ),
                Draft(
                    incident_id=incident.id,
                    platform="x",
                    request=HOSTILE_FORMULA,
                    requested_by=DRAFTER,
                    requested_at=_minutes(20),
                    text="We hear you.",
                    strategy="acknowledge",
                    status=REJECTED,
                    decided_by=APPROVER,
                    decided_at=_minutes(25),
                    reason=f"too cold {HOSTILE_SCRIPT}",
                ),
                Draft(
                    incident_id=incident.id,
                    platform="x",
                    request="reply to the thread",
                    requested_by=DRAFTER,
                    requested_at=_minutes(30),
                    text="Sorry!",
                    final_text="We're sorry, flights resume at noon.",
                    strategy="apologise",
                    status=APPROVED,
                    decided_by=APPROVER,
                    decided_at=_minutes(40),
                ),
            ]
        )
        labels = ["negative", "negative", "neutral", "positive"]
        for n in range(40):
            # 10 before the open (inside the 120 min look-back), 25 during, 5 after; and noise off-brand.
            at = (
                _minutes(-100 + n * 5)
                if n < 10
                else _minutes((n - 10) * 5)
                if n < 35
                else _minutes(150 + n - 34)
            )
            session.add(
                Mention(
                    platform="x",
                    external_id=str(n),
                    text=f"Acme Air is late again {n}",
                    created_at=at,
                    sentiment_label=labels[n % 4],
                    sentiment_score=0.0,
                )
            )
        session.add(
            Mention(
                platform="x",
                external_id="other",
                text="Nothing about the brand",
                created_at=_minutes(5),
                sentiment_label="negative",
                sentiment_score=-0.5,
            )
        )
        return SeededIncident(incident.id, incident.channel_name or "", ids)
