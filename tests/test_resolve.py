"""Resolving an incident: lead only, a summary with metrics, digests stopped, the room read-mostly after."""

from __future__ import annotations

from bot.background.runtime import Runtime
from bot.crisis import timeline
from bot.demo.signed_slack import SlackClient
from bot.demo.slack_emulator import SlackEmulator
from models.incidents import OPEN, RESOLVED
from tests.conftest import APPROVER, LEAD, MONITOR
from tests.fixtures_lifecycle import all_text, events, incident, open_incident, wait_until
from tests.test_open import CountingScheduler


def _told(emulator: SlackEmulator, user_id: str, words: str) -> str:
    return wait_until(
        lambda: next((all_text(e) for e in emulator.ephemerals(user=user_id) if words in all_text(e)), None),
        what=f"an ephemeral saying {words!r}",
    )


def test_only_the_lead_can_resolve(slack: SlackClient, emulator: SlackEmulator, runtime: Runtime) -> None:
    room = open_incident(slack, emulator, runtime)
    messages_before = len(emulator.messages(room.channel_id))
    slack.command("resolve All quiet now", user_id=APPROVER, channel_id=room.channel_id)
    assert f"Only the lead, <@{LEAD}>, can resolve" in _told(emulator, APPROVER, "Only the lead")
    row = incident(runtime, room.id)
    assert (row.status, row.resolved_at, row.resolved_by) == (OPEN, None, None)
    assert events(runtime, room.id, timeline.INCIDENT_RESOLVED) == []
    assert len(emulator.messages(room.channel_id)) == messages_before


def test_resolve_posts_a_summary_and_stops_digests(
    slack: SlackClient, emulator: SlackEmulator, runtime: Runtime
) -> None:
    runtime.scheduler = scheduler = CountingScheduler(runtime)
    room = open_incident(slack, emulator, runtime, "sev2 Flights delayed")
    for text in ("decide Offer vouchers", "fact Fixed at 14:00", "rumor Planes grounded"):
        slack.command(text, user_id=MONITOR, channel_id=room.channel_id)
    wait_until(lambda: len(emulator.messages(room.channel_id)) == 4, what="three echoes")
    syncs = scheduler.syncs

    slack.command("resolve Baggage system fixed; vouchers issued", user_id=LEAD, channel_id=room.channel_id)
    summary = wait_until(
        lambda: next(
            (m for m in emulator.messages(room.channel_id) if "Digests have stopped" in all_text(m)), None
        ),
        what="the summary",
    )
    text = all_text(summary)
    assert "*Decisions:* 1 · *Facts:* 1" in text and "*Rumours:* 1 (1 open)" in text
    assert "Baggage system fixed; vouchers issued" in text and "*Duration:*" in text
    assert f"*Incident lead*: <@{LEAD}>" in text

    row = incident(runtime, room.id)
    assert (row.status, row.resolved_by, row.summary) == (
        RESOLVED,
        LEAD,
        "Baggage system fixed; vouchers issued",
    )
    assert row.next_digest_at is None
    assert scheduler.syncs == syncs + 1
    assert emulator.channels[room.channel_id].topic == f"SEV2 Major · Lead: <@{LEAD}> · Status: resolved"
    brief = next(m for m in emulator.messages(room.channel_id) if m["ts"] == row.brief_ts)
    assert not [b for b in brief["blocks"] if b.get("accessory")]  # no Claim buttons once resolved
    resolved = events(runtime, room.id, timeline.INCIDENT_RESOLVED)
    assert [(e.actor, e.at) for e in resolved] == [(LEAD, row.resolved_at)]
    assert emulator.errors == []

    # The Markdown export is uploaded to the room and logged.
    export = wait_until(lambda: next((f for f in emulator.files if f["channel"] == room.channel_id), None),
                        what="the export upload")
    assert export["name"].endswith(".md") and b"Flights delayed" in export["bytes"]
    wait_until(lambda: events(runtime, room.id, timeline.EXPORT_UPLOADED), what="export.uploaded")

    # Afterwards: fact is refused, decide and status still work, resolving again is refused.
    slack.command("fact Too late", user_id=MONITOR, channel_id=room.channel_id)
    _told(emulator, MONITOR, "This incident is resolved")
    slack.command("decide Write the post-mortem by Friday", user_id=LEAD, channel_id=room.channel_id)
    wait_until(
        lambda: any("post-mortem by Friday" in all_text(m) for m in emulator.messages(room.channel_id))
    )
    response = slack.command("status", user_id=MONITOR, channel_id=room.channel_id)
    assert "Open rumours" in all_text(response.json()) and "resolved" in all_text(response.json())
    slack.command("resolve", user_id=LEAD, channel_id=room.channel_id)
    _told(emulator, LEAD, "This incident is resolved")
    assert len(events(runtime, room.id, timeline.INCIDENT_RESOLVED)) == 1
