"""Helpers for the lifecycle tests: open an incident through `/crisis open`, wait for the database."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import select

from bot.background.runtime import Runtime
from bot.demo.signed_slack import SlackClient
from bot.demo.slack_emulator import SlackEmulator
from models import Incident, TimelineEvent, transaction
from models.incidents import OPEN
from tests.conftest import LEAD

T = TypeVar("T")


def wait_until(check: Callable[[], T], timeout: float = 10.0, what: str = "condition") -> T:
    """Poll `check` until it returns something truthy (the app works after the ack, on another thread
    or process), and return that."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def incidents(runtime: Runtime) -> list[Incident]:
    with transaction(runtime.sessions) as session:
        return list(session.scalars(select(Incident).order_by(Incident.id)))


def incident(runtime: Runtime, incident_id: int) -> Incident:
    with transaction(runtime.sessions) as session:
        row = session.get(Incident, incident_id)
        assert row is not None
        return row


def events(runtime: Runtime, incident_id: int, kind: str | None = None) -> list[TimelineEvent]:
    with transaction(runtime.sessions) as session:
        query = select(TimelineEvent).where(TimelineEvent.incident_id == incident_id)
        if kind:
            query = query.where(TimelineEvent.kind == kind)
        return list(session.scalars(query.order_by(TimelineEvent.id)))


def rows(runtime: Runtime, model: Any, **where: Any) -> list[Any]:
    with transaction(runtime.sessions) as session:
        query = select(model)
        for column, value in where.items():
            query = query.where(getattr(model, column) == value)
        return list(session.scalars(query.order_by(model.id)))


@dataclass(frozen=True)
class OpenedIncident:
    id: int
    channel_id: str
    channel_name: str


def open_incident(
    slack: SlackClient,
    emulator: SlackEmulator,
    runtime: Runtime,
    text: str = "Flights delayed",
    user_id: str = LEAD,
) -> OpenedIncident:
    """`/crisis open <text>` from #general, waited for until the incident is open."""
    before = {row.id for row in incidents(runtime)}
    told_before = len(_opened_notes(emulator, user_id))
    response = slack.command(f"open {text}", user_id=user_id)
    assert response.status_code == 200, response.text

    def opened() -> Incident | None:
        new = [row for row in incidents(runtime) if row.id not in before and row.status == OPEN]
        return new[0] if new else None

    row = wait_until(opened, what=f"/crisis open {text}")
    # The opener hears back last: once they have, the open's background work is over.
    wait_until(lambda: len(_opened_notes(emulator, user_id)) > told_before, what="the opener's confirmation")
    assert row.channel_id and row.channel_name
    return OpenedIncident(row.id, row.channel_id, row.channel_name)


def _opened_notes(emulator: SlackEmulator, user_id: str) -> list[dict[str, Any]]:
    return [e for e in emulator.ephemerals(user=user_id) if e["text"].startswith("Incident opened")]


def all_text(message: dict[str, Any]) -> str:
    """Every text in a message's blocks, joined (for asserting what people see)."""
    parts: list[str] = [str(message.get("text") or "")]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("text"), str):
                parts.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(message.get("blocks") or [])
    return "\n".join(parts)
