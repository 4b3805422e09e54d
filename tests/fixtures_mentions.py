"""Helpers for the mention, digest, spike and scheduler tests: incidents with a channel, stored mentions."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from bot.background.runtime import Runtime
from bot.demo.slack_emulator import SlackEmulator
from models import Incident, Mention, transaction, utcnow
from models.incidents import OPEN
from tests.conftest import LEAD


def make_incident(
    runtime: Runtime,
    emulator: SlackEmulator,
    *,
    title: str = "Flights delayed",
    severity: str = "sev2",
    playbook: str | None = "outage",
    opened_at: datetime | None = None,
    next_digest_at: datetime | None = None,
    channel_name: str | None = None,
) -> Incident:
    """An open incident whose channel exists in the emulator (as the lifecycle would leave it)."""
    opened = opened_at or utcnow() - timedelta(hours=3)
    name = channel_name or f"crisis-test-{len(emulator.channels)}"
    channel_id = emulator.add_channel(name, [LEAD])
    with transaction(runtime.sessions) as session:
        incident = Incident(
            title=title,
            severity=severity,
            playbook=playbook,
            status=OPEN,
            channel_id=channel_id,
            channel_name=name,
            opened_by=LEAD,
            opened_at=opened,
            next_digest_at=next_digest_at,
        )
        session.add(incident)
    return incident


def add_mentions(runtime: Runtime, rows: list[dict[str, Any]]) -> list[int]:
    """Store mentions as given (sentiment included), bypassing the scorer; returns their ids."""
    defaults = {
        "platform": "twitter",
        "author_followers": 0,
        "likes": 0,
        "shares": 0,
        "replies": 0,
        "sentiment_label": "neutral",
        "sentiment_score": 0.0,
        "source": "test",
    }
    with transaction(runtime.sessions) as session:
        mentions = []
        for index, row in enumerate(rows):
            values = {**defaults, "external_id": f"m{index}-{row['created_at'].timestamp()}", **row}
            mentions.append(Mention(**values))
        session.add_all(mentions)
        session.flush()
        return [mention.id for mention in mentions]


def with_raw_field(item: dict[str, Any], field: str, raw: str) -> str:
    """JSON text of the mention `item` with `field` written as the raw JSON `raw` (a key repeated last wins):
    json.dumps cannot write a 5,000-digit integer, and nests no deeper than its recursion limit."""
    return f"{json.dumps(item)[:-1]}, {json.dumps(field)}: {raw}}}"
