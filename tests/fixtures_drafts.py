"""Helpers for the draft tests: an incident with a war-room channel and roles, and waiting for drafting."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import func, select

from bot.background.runtime import Runtime
from bot.crisis import timeline
from bot.demo.slack_emulator import SlackEmulator
from models import (
    Draft,
    Fact,
    Incident,
    KeyMessage,
    Mention,
    RoleAssignment,
    TimelineEvent,
    transaction,
    utcnow,
)
from models.incidents import OPEN
from tests.conftest import APPROVER, BYSTANDER, DRAFTER, LEAD, LIAISON, MONITOR
from tests.fixtures_lifecycle import wait_until  # noqa: F401 - drafts tests import it from here

T = TypeVar("T")

FACTS = ("Flights from Gatwick were delayed up to 3 hours on Monday by a baggage system fault",
         "The baggage system was fixed at 14:00 UTC")
KEY_MESSAGES = ("Everyone delayed over 2 hours can claim a meal voucher at acmeair.example/help",)


@dataclass(frozen=True)
class WarRoom:
    incident_id: int
    channel_id: str


def open_war_room(runtime: Runtime, emulator: SlackEmulator, *, playbook: str | None = "outage",
                  facts: tuple[str, ...] = FACTS, key_messages: tuple[str, ...] = KEY_MESSAGES) -> WarRoom:
    """An open incident as the lifecycle leaves it: a channel with the team, roles, facts, key messages."""
    members = [LEAD, APPROVER, DRAFTER, MONITOR, LIAISON, BYSTANDER]
    channel_id = emulator.add_channel(f"crisis-20250101-delays-{len(emulator.channels)}", members)
    with transaction(runtime.sessions) as session:
        incident = Incident(title="Gatwick delays", severity="sev2", playbook=playbook, status=OPEN,
                            channel_id=channel_id, channel_name="crisis-delays", opened_by=LEAD,
                            opened_at=utcnow())
        session.add(incident)
        session.flush()
        holders = (("lead", LEAD), ("approver", APPROVER), ("drafter", DRAFTER), ("monitor", MONITOR))
        for role, user in holders:
            session.add(RoleAssignment(incident_id=incident.id, role=role, user_id=user, assigned_by=LEAD,
                                       assigned_at=utcnow()))
        session.add_all(Fact(incident_id=incident.id, text=text, added_by=LEAD, added_at=utcnow())
                        for text in facts)
        session.add_all(KeyMessage(incident_id=incident.id, text=text, added_by=LEAD, added_at=utcnow())
                        for text in key_messages)
        timeline.record_event(session, incident.id, timeline.INCIDENT_OPENED, "opened", actor=LEAD)
        incident_id = incident.id
    return WarRoom(incident_id, channel_id)


def add_mention(runtime: Runtime, *, platform: str = "bluesky", text: str, url: str | None = None) -> int:
    """Store one mention, as ingest would."""
    with transaction(runtime.sessions) as session:
        mention = Mention(platform=platform, external_id=f"m-{time.monotonic_ns()}", text=text, url=url,
                          author="someone", created_at=utcnow(), sentiment_label="negative",
                          sentiment_score=-0.6)
        session.add(mention)
        session.flush()
        return mention.id


def drafts_of(runtime: Runtime, incident_id: int) -> list[Draft]:
    with transaction(runtime.sessions) as session:
        return list(session.scalars(select(Draft).where(Draft.incident_id == incident_id).order_by(Draft.id)))


def wait_for_draft(runtime: Runtime, incident_id: int, status: str | tuple[str, ...], index: int = -1,
                   timeout: float = 30.0) -> Draft:
    """The incident's draft (latest by default) once it has reached `status`."""
    wanted = (status,) if isinstance(status, str) else status

    def check() -> Draft | None:
        found = drafts_of(runtime, incident_id)
        if not found:
            return None
        draft = found[index] if -len(found) <= index < len(found) else None
        return draft if draft is not None and draft.status in wanted else None

    return wait_until(check, timeout, f"a draft in {wanted}")


def events_of(runtime: Runtime, incident_id: int, kind: str) -> list[TimelineEvent]:
    with transaction(runtime.sessions) as session:
        query = select(TimelineEvent).where(TimelineEvent.incident_id == incident_id,
                                            TimelineEvent.kind == kind)
        return list(session.scalars(query.order_by(TimelineEvent.id)))


def count(runtime: Runtime, model: Any, **where: Any) -> int:
    with transaction(runtime.sessions) as session:
        query = select(func.count()).select_from(model)
        for name, value in where.items():
            query = query.where(getattr(model, name) == value)
        return int(session.scalar(query) or 0)


def message_text(message: dict[str, Any]) -> str:
    """All the text a message shows (its blocks' text), for assertions."""
    parts: list[str] = [message.get("text") or ""]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("text"), str):
                parts.append(node["text"])
            for value in node.values():
                if isinstance(value, dict | list):
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(message.get("blocks") or [])
    return "\n".join(parts)


def action_ids(message: dict[str, Any]) -> list[str]:
    """The action ids of a message's buttons."""
    blocks = message.get("blocks") or []
    return [element.get("action_id") for block in blocks if block.get("type") == "actions"
            for element in block.get("elements") or []]


def draft_message(emulator: SlackEmulator, draft: Draft) -> dict[str, Any]:
    """The channel message that shows this draft."""
    assert draft.channel_id and draft.slack_ts, "the draft has no message"
    message = next((m for m in emulator.messages(draft.channel_id) if m["ts"] == draft.slack_ts), None)
    assert message is not None, f"no message at {draft.slack_ts}"
    return message



def button_value(message: dict[str, Any], action_id: str) -> str | None:
    """The value of a message's button with this action id (what a click on it sends)."""
    return next((element.get("value") for block in message.get("blocks") or [] if block.get("type") == "actions"
                 for element in block.get("elements") or [] if element.get("action_id") == action_id), None)


def versions(emulator: SlackEmulator, draft: Draft) -> list[dict[str, Any]]:
    """Every version the draft's message has shown since it was posted (each chat.update), oldest first,
    ending with the message as it is now."""
    message = draft_message(emulator, draft)
    return [*(message.get("edits") or []), message]


def shown_at(emulator: SlackEmulator, draft: Draft, revision: int, timeout: float = 10.0) -> dict[str, Any]:
    """The draft's message as Slack showed it at `revision` (its buttons carry "<draft id>:<revision>"),
    waiting for it to be shown."""
    wanted = f"{draft.id}:{revision}"
    return emulator.wait_for(
        lambda emu: next((v for v in reversed(versions(emu, draft)) if button_value(v, "draft_approve") == wanted),
                         None), timeout=timeout)


def shown_reply(message: dict[str, Any]) -> str:
    """The reply a pending draft's message shows, as the reader sees it: its text sections joined (they sit
    between the divider and the *Strategy* details) with Slack's three escapes undone."""
    blocks = message.get("blocks") or []
    start = next(i for i, block in enumerate(blocks) if block.get("type") == "divider") + 1
    parts = []
    for block in blocks[start:]:
        text = (block.get("text") or {}).get("text", "")
        if text.startswith("*Strategy:*") or block.get("type") != "section":
            break
        if not text.startswith(":memo: *Template draft*"):
            parts.append(text)
    return "".join(parts).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
