"""Sentiment corrections: a monitor corrects a post's sentiment from an escalation or a digest's top post (an
overflow menu, a signed click); stored beside the model's label, counted in digests and exports from then
on, and written as labelled CSV by `warroom mentions corrections`."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from bot.background.runtime import Runtime
from bot.demo.signed_slack import SlackClient
from bot.demo.slack_emulator import SlackEmulator
from bot.exports import stream_export
from bot.infra.clock import ManualClock
from bot.infra.settings import Settings
from bot.listening.corrections import SENTIMENT_CORRECTED, export_corrections
from bot.listening.digests import compute_digest
from models import Mention, SentimentCorrection, TimelineEvent, transaction, utcnow
from tests.conftest import BYSTANDER, INGEST_TOKEN, MONITOR, AppServer
from tests.fixtures_drafts import message_text, open_war_room
from tests.fixtures_lifecycle import wait_until
from tests.test_escalations import ANGRY, escalation_messages, post

AUTH = {"Authorization": f"Bearer {INGEST_TOKEN}"}


def corrections(runtime: Runtime) -> list[SentimentCorrection]:
    with transaction(runtime.sessions) as session:
        return list(session.scalars(select(SentimentCorrection)))


def told(emulator: SlackEmulator, user_id: str, words: str) -> str:
    return wait_until(lambda: next((e["text"] for e in emulator.ephemerals(user=user_id) if words in e["text"]),
                                   None), what=f"an ephemeral saying {words!r}")


def menu_values(message: dict[str, Any]) -> list[str]:
    return [option["value"] for block in message["blocks"] if block["type"] == "actions"
            for element in block["elements"] if element["type"] == "overflow" for option in element["options"]]


def test_a_monitor_corrects_an_escalation_and_it_counts_from_then_on(
    runtime: Runtime, emulator: SlackEmulator, app_server: AppServer, slack: SlackClient, clock: ManualClock,
    settings: Settings, tmp_path: Path,
) -> None:
    room = open_war_room(runtime, emulator)
    with httpx.Client(base_url=app_server.url, timeout=10) as http:
        response = http.post("/mentions", json=post(1, text=f"{ANGRY}, \"quoted\", and a comma"), headers=AUTH)
        assert response.status_code == 202
    message = wait_until(lambda: escalation_messages(emulator, room.channel_id), what="the escalation")[0]
    with transaction(runtime.sessions) as session:
        mention = session.scalars(select(Mention)).one()
        mention_id, model_label = mention.id, mention.sentiment_label
    assert model_label == "negative"
    assert menu_values(message) == [f"{mention_id}:neutral", f"{mention_id}:positive"]
    before = _digest_split(runtime, room.incident_id)
    assert before["negative"] == 1

    # Someone without a monitor or lead role is refused, and nothing is stored.
    slack.block_action("correct_sentiment", value=f"{mention_id}:positive", user_id=BYSTANDER,
                       channel_id=room.channel_id)
    told(emulator, BYSTANDER, "Only the incident's monitor or lead")
    assert corrections(runtime) == []

    slack.block_action("correct_sentiment", value=f"{mention_id}:neutral", user_id=MONITOR,
                       channel_id=room.channel_id)
    assert "now counts as *neutral*" in told(emulator, MONITOR, "now counts as")
    [fix] = corrections(runtime)
    assert (fix.mention_id, fix.label, fix.model_label, fix.corrected_by, fix.incident_id) == (
        mention_id, "neutral", "negative", MONITOR, room.incident_id)
    with transaction(runtime.sessions) as session:
        stored = session.get(Mention, mention_id)
        assert stored is not None and stored.sentiment_label == "negative"  # the model's label is kept beside it
        [event] = session.scalars(select(TimelineEvent).where(TimelineEvent.kind == SENTIMENT_CORRECTED)).all()
        assert event.actor == MONITOR

    # Counted in the digest and the export from then on.
    after = _digest_split(runtime, room.incident_id)
    assert (after["negative"], after["neutral"]) == (0, before["neutral"] + 1)
    with transaction(runtime.sessions) as session:
        exported = json.loads("".join(stream_export(session, room.incident_id, "json", runtime.plan, {})))
    [row] = exported["sections"]["sentiment_corrections"]["rows"]
    assert (row["Model said"], row["Corrected to"], row["By"]) == ("negative", "neutral", MONITOR)
    assert exported["mentions"]["during"]["negative"] == 0

    # And written as labelled CSV in the dev sets' schema.
    out = tmp_path / "corrections.csv"
    assert export_corrections(settings, out) == 0
    with out.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert rows == [{"id": "twitter:p1", "text": f"{ANGRY}, \"quoted\", and a comma", "label": "neutral",
                     "created_at": rows[0]["created_at"], "source": "warroom"}]
    assert out.read_bytes().startswith(b"id,text,label,created_at,source\r\n")


def test_a_digest_top_post_has_the_correction_menu(
    runtime: Runtime, emulator: SlackEmulator, app_server: AppServer, slack: SlackClient, clock: ManualClock,
) -> None:
    room = open_war_room(runtime, emulator)
    with httpx.Client(base_url=app_server.url, timeout=10) as http:
        quiet = post(1, text="Acme Air flight was fine", author_followers=10)
        assert http.post("/mentions", json=quiet, headers=AUTH).status_code == 202
    clock.advance(timedelta(minutes=1))
    slack.command("digest", user_id=MONITOR, channel_id=room.channel_id)
    digest = wait_until(lambda: next((m for m in emulator.messages(room.channel_id)
                                      if "Mention digest" in message_text(m)), None), what="the digest")
    [value, _] = menu_values(digest)
    mention_id = int(value.split(":")[0])
    slack.block_action("correct_sentiment", value=value, user_id=MONITOR, channel_id=room.channel_id)
    told(emulator, MONITOR, "now counts as")
    [fix] = corrections(runtime)
    assert (fix.mention_id, fix.label) == (mention_id, value.split(":")[1])


def _digest_split(runtime: Runtime, incident_id: int) -> dict[str, int]:
    with transaction(runtime.sessions) as session:
        return compute_digest(session, runtime.plan, incident_id, utcnow() + timedelta(minutes=1)).sentiment


def test_corrections_csv_is_empty_with_only_a_header(settings: Settings, runtime: Runtime) -> None:
    buffer = io.StringIO()
    from bot.listening.corrections import write_corrections_csv

    with transaction(runtime.sessions) as session:
        assert write_corrections_csv(session, buffer) == 0
    assert buffer.getvalue() == "id,text,label,created_at,source\r\n"
