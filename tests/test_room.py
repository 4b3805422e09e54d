"""Running the room: facts, key messages, rumours, decisions, severity, status, and *Add to timeline*."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import event

from bot.background.runtime import Runtime
from bot.crisis import timeline
from bot.crisis.room import status_summary
from bot.demo.signed_slack import SlackClient
from bot.demo.slack_emulator import SlackEmulator
from models import Decision, Digest, Draft, Fact, KeyMessage, Rumour, reading, transaction, utcnow
from models.incidents import CONFIRMED, REFUTED
from tests.conftest import BYSTANDER, LEAD, MONITOR
from tests.fixtures_lifecycle import all_text, events, incident, open_incident, rows, wait_until
from tests.test_open import CountingScheduler


def _told(emulator: SlackEmulator, user_id: str, words: str) -> str:
    return wait_until(
        lambda: next((all_text(e) for e in emulator.ephemerals(user=user_id) if words in all_text(e)), None),
        what=f"an ephemeral saying {words!r}",
    )


def _posted(emulator: SlackEmulator, channel_id: str, words: str) -> dict:
    return wait_until(
        lambda: next((m for m in emulator.messages(channel_id) if words in all_text(m)), None),
        what=f"a message saying {words!r}",
    )


def test_facts_and_key_messages_are_stored_and_echoed(
    slack: SlackClient, emulator: SlackEmulator, runtime: Runtime
) -> None:
    room = open_incident(slack, emulator, runtime)
    slack.command(
        "fact Baggage system failed at 09:10 <!channel>", user_id=MONITOR, channel_id=room.channel_id
    )
    slack.command("message We're sorry, and we're fixing it", user_id=LEAD, channel_id=room.channel_id)
    fact = _posted(emulator, room.channel_id, "Baggage system failed")
    assert "&lt;!channel&gt;" in all_text(fact) and "<!channel>" not in all_text(fact)
    _posted(emulator, room.channel_id, "we're fixing it")

    facts = rows(runtime, Fact, incident_id=room.id)
    assert [(f.text, f.added_by) for f in facts] == [("Baggage system failed at 09:10 <!channel>", MONITOR)]
    assert [m.text for m in rows(runtime, KeyMessage, incident_id=room.id)] == [
        "We're sorry, and we're fixing it"
    ]
    fact_events = events(runtime, room.id, timeline.FACT_ADDED)
    assert fact_events[0].actor == MONITOR and fact_events[0].data == {"fact_id": facts[0].id}
    assert events(runtime, room.id, timeline.MESSAGE_ADDED)[0].actor == LEAD
    assert emulator.errors == []


def test_empty_or_overlong_text_is_refused(
    slack: SlackClient, emulator: SlackEmulator, runtime: Runtime
) -> None:
    room = open_incident(slack, emulator, runtime)
    slack.command("fact", user_id=LEAD, channel_id=room.channel_id)
    assert "/crisis fact <text>" in _told(emulator, LEAD, "Say what the fact is")
    slack.command("decide " + "x" * 2600, user_id=LEAD, channel_id=room.channel_id)
    _told(emulator, LEAD, "keep it to 2500")
    assert (
        rows(runtime, Fact, incident_id=room.id) == [] and rows(runtime, Decision, incident_id=room.id) == []
    )


def test_decisions_are_logged_with_who_and_when(
    slack: SlackClient, emulator: SlackEmulator, runtime: Runtime
) -> None:
    room = open_incident(slack, emulator, runtime)
    before = utcnow()
    slack.command(
        "decide Offer meal vouchers to delayed passengers", user_id=LEAD, channel_id=room.channel_id
    )
    _posted(emulator, room.channel_id, "Offer meal vouchers")
    decision = rows(runtime, Decision, incident_id=room.id)[0]
    assert (decision.kind, decision.decided_by) == ("decision", LEAD)
    assert before <= decision.decided_at <= utcnow()
    assert events(runtime, room.id, timeline.DECISION_LOGGED)[0].data == {"decision_id": decision.id}


def test_a_rumour_outcome_is_set_once(slack: SlackClient, emulator: SlackEmulator, runtime: Runtime) -> None:
    room = open_incident(slack, emulator, runtime)
    slack.command(
        "rumor CEO said passengers should 'stop whining'", user_id=MONITOR, channel_id=room.channel_id
    )
    message = _posted(emulator, room.channel_id, "stop whining")
    buttons = [e["action_id"] for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert buttons == ["rumour_refuted", "rumour_confirmed", "rumour_dismissed", "followup_from"]
    rumour = wait_until(lambda: [r for r in rows(runtime, Rumour, incident_id=room.id) if r.slack_ts])[0]
    assert rumour.slack_ts == message["ts"]

    slack.block_action("rumour_refuted", user_id=LEAD, channel_id=room.channel_id, message_ts=message["ts"])
    wait_until(lambda: rows(runtime, Rumour, incident_id=room.id)[0].status == REFUTED)
    updated = wait_until(
        lambda: next(
            (m for m in emulator.messages(room.channel_id) if m["ts"] == message["ts"] and m.get("edited")),
            None,
        )
    )
    # Decided: only *Follow-up* is left.
    assert [e["action_id"] for b in updated["blocks"] if b["type"] == "actions" for e in b["elements"]] == [
        "followup_from"]
    assert f"*Refuted* by <@{LEAD}>" in all_text(updated)

    # A late click on the old message does not change the outcome.
    slack.block_action(
        "rumour_confirmed",
        value=str(rumour.id),
        user_id=BYSTANDER,
        channel_id=room.channel_id,
        message=message,
    )
    assert "already marked refuted" in _told(emulator, BYSTANDER, "already marked")
    final = rows(runtime, Rumour, incident_id=room.id)[0]
    assert (final.status, final.decided_by) == (REFUTED, LEAD)
    outcomes = events(runtime, room.id, timeline.RUMOUR_OUTCOME)
    assert [(e.actor, e.data["outcome"]) for e in outcomes] == [(LEAD, REFUTED)]
    assert CONFIRMED not in {e.data["outcome"] for e in outcomes}
    assert emulator.errors == []


def test_severity_change_is_a_logged_decision_and_reschedules_digests(
    slack: SlackClient, emulator: SlackEmulator, runtime: Runtime
) -> None:
    runtime.scheduler = scheduler = CountingScheduler(runtime)
    room = open_incident(slack, emulator, runtime)
    syncs = scheduler.syncs
    slack.command("severity SEV1", user_id=MONITOR, channel_id=room.channel_id)
    _posted(emulator, room.channel_id, "Severity changed")
    row = incident(runtime, room.id)
    assert row.severity == "sev1"
    assert utcnow() < row.next_digest_at <= utcnow() + timedelta(minutes=15)
    assert scheduler.syncs == syncs + 1
    decision = rows(runtime, Decision, incident_id=room.id)[0]
    assert (decision.kind, decision.decided_by) == ("severity", MONITOR)
    change = events(runtime, room.id, timeline.SEVERITY_CHANGED)[0]
    assert change.data["from"] == "sev3" and change.data["to"] == "sev1" and change.actor == MONITOR
    assert emulator.channels[room.channel_id].topic.startswith("SEV1 Critical")
    brief = next(m for m in emulator.messages(room.channel_id) if m["ts"] == row.brief_ts)
    assert "*SEV1* Critical" in all_text(brief)

    slack.command("severity sev1", user_id=MONITOR, channel_id=room.channel_id)
    _told(emulator, MONITOR, "already sev1")
    slack.command("severity critical", user_id=MONITOR, channel_id=room.channel_id)
    assert "/crisis severity <sev1-4>" in _told(emulator, MONITOR, "is not a severity")
    assert len(rows(runtime, Decision, incident_id=room.id)) == 1
    assert emulator.errors == []


def test_status_summarises_the_incident(
    slack: SlackClient, emulator: SlackEmulator, runtime: Runtime
) -> None:
    room = open_incident(slack, emulator, runtime)
    slack.command("fact Delays up to 3 hours", user_id=LEAD, channel_id=room.channel_id)
    slack.command("rumor Flights are grounded nationwide", user_id=LEAD, channel_id=room.channel_id)
    wait_until(
        lambda: rows(runtime, Rumour, incident_id=room.id) and rows(runtime, Fact, incident_id=room.id)
    )
    digest_at = utcnow() - timedelta(minutes=5)
    with transaction(runtime.sessions) as session:
        session.add(
            Draft(incident_id=room.id, platform="x", request="reply", requested_by=LEAD, status="pending")
        )
        session.add(
            Digest(
                incident_id=room.id,
                window_start=digest_at - timedelta(minutes=30),
                window_end=digest_at,
                posted_at=digest_at,
            )
        )
    response = slack.command("status", user_id=BYSTANDER, channel_id=room.channel_id)
    # A read-only command is answered in the ack itself: nothing queued, nothing sent afterwards.
    assert response.json()["response_type"] == "ephemeral"
    text = all_text(response.json())
    assert "Open rumours" in text
    assert "Flights are grounded nationwide" in text and "Delays up to 3 hours" in text
    assert "Drafts waiting for approval: *1*" in text
    assert f"<!date^{int(digest_at.timestamp())}^" in text
    assert f"*Incident lead* (`lead`): <@{LEAD}>" in text


def test_status_summary_reads_the_incident_as_it_is(
    slack: SlackClient, emulator: SlackEmulator, runtime: Runtime
) -> None:
    """Entries in order, only the last five decisions, pending drafts only, the last digest that was posted."""
    room = open_incident(slack, emulator, runtime)
    start = utcnow() - timedelta(hours=1)
    with transaction(runtime.sessions) as session:
        for n in range(7):
            session.add(Decision(incident_id=room.id, kind="decision", text=f"Decision {n}", decided_by=LEAD,
                                 decided_at=start + timedelta(minutes=n)))
        for n in range(3):
            session.add(Fact(incident_id=room.id, text=f"Fact {n}", added_by=MONITOR, added_at=start))
            session.add(KeyMessage(incident_id=room.id, text=f"Message {n}", added_by=LEAD, added_at=start))
        for status in ("pending", "pending", "approved", "rejected"):
            session.add(Draft(incident_id=room.id, platform="x", request="reply", requested_by=LEAD, status=status))
        posted = start + timedelta(minutes=30)
        session.add(Digest(incident_id=room.id, window_start=start, window_end=posted, posted_at=posted))
        session.add(Digest(incident_id=room.id, window_start=posted, window_end=posted + timedelta(minutes=5),
                           posted_at=posted + timedelta(minutes=5), error="channel_not_found"))
    with reading(runtime.sessions) as session:
        summary = status_summary(session, runtime.plan, room.id)
    assert [d.text for d in summary.decisions] == [f"Decision {n}" for n in range(2, 7)]
    assert [f.text for f in summary.facts] == ["Fact 0", "Fact 1", "Fact 2"]
    assert [m.text for m in summary.key_messages] == ["Message 0", "Message 1", "Message 2"]
    assert {f.by for f in summary.facts} == {MONITOR} and summary.facts[0].at == start
    assert summary.pending_drafts == 2
    assert summary.last_digest_at == posted
    assert summary.incident.id == room.id and summary.open_rumours == ()


def test_a_room_asking_status_at_once_is_answered_from_one_read_a_second(
    slack: SlackClient, emulator: SlackEmulator, runtime: Runtime
) -> None:
    room = open_incident(slack, emulator, runtime)
    slack.command("status", user_id=LEAD, channel_id=room.channel_id)
    statements: list[str] = []  # those the web threads run (the worker may still be refreshing Home tabs)

    def seen(_connection: object, _cursor: object, statement: str, *_rest: object) -> None:
        if threading.current_thread().name.startswith("waitress"):
            statements.append(statement)

    event.listen(runtime.engine, "before_cursor_execute", seen)
    for user_id in (MONITOR, BYSTANDER):
        answer = slack.command("status", user_id=user_id, channel_id=room.channel_id).json()
        assert "Flights delayed" in all_text(answer)
    # Only the channel's incident was looked up: the summary read a moment ago served both.
    assert len([s for s in statements if "FROM incidents" in s]) == 2 and not any("FROM facts" in s for s in statements)

    # No older than its seconds: a fact recorded since shows once they have passed.
    runtime.recent_status.seconds = 0.2
    with transaction(runtime.sessions) as session:
        session.add(Fact(incident_id=room.id, text="Delays up to 3 hours", added_by=MONITOR, added_at=utcnow()))
    time.sleep(0.25)
    answer = slack.command("status", user_id=LEAD, channel_id=room.channel_id).json()
    assert "Delays up to 3 hours" in all_text(answer)


def test_status_with_text_posts_an_update(
    slack: SlackClient, emulator: SlackEmulator, runtime: Runtime
) -> None:
    room = open_incident(slack, emulator, runtime)
    slack.command("status Holding statement is out; volume falling", user_id=LEAD, channel_id=room.channel_id)
    posted = _posted(emulator, room.channel_id, "volume falling")
    assert "Status update" in all_text(posted)
    event = wait_until(lambda: events(runtime, room.id, timeline.STATUS_POSTED))[0]
    assert (event.actor, event.text, event.data["ts"]) == (
        LEAD,
        "Holding statement is out; volume falling",
        posted["ts"],
    )


def test_add_to_timeline_keeps_the_author_and_original_time(
    slack: SlackClient, emulator: SlackEmulator, runtime: Runtime
) -> None:
    room = open_incident(slack, emulator, runtime)
    said_at = datetime(2025, 3, 7, 9, 15, 30, 250000, tzinfo=UTC)
    message = {
        "type": "message",
        "user": MONITOR,
        "text": "Sky News is calling about the delays",
        "ts": f"{said_at.timestamp():.6f}",
    }
    slack.message_shortcut("add_to_timeline", message, channel_id=room.channel_id, user_id=LEAD)
    logged = wait_until(lambda: events(runtime, room.id, timeline.MESSAGE_LOGGED))[0]
    assert logged.at == said_at
    assert (logged.actor, logged.data["author"], logged.text) == (LEAD, MONITOR, message["text"])
    _told(emulator, LEAD, "Added to the timeline")


def test_add_to_timeline_outside_an_incident_explains(
    slack: SlackClient, emulator: SlackEmulator, runtime: Runtime
) -> None:
    open_incident(slack, emulator, runtime)
    message = {"type": "message", "user": BYSTANDER, "text": "lunch?", "ts": f"{utcnow().timestamp():.6f}"}
    slack.message_shortcut("add_to_timeline", message, user_id=BYSTANDER)
    assert "not one" in _told(emulator, BYSTANDER, "works on messages in an incident channel")
