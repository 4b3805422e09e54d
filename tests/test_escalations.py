"""Escalations: a crossing mention arrives (webhook, CSV import), the worker posts it into each open incident
it belongs to at once, with reach, engagement, sentiment, link and *Draft reply*; once per post, at most the
hourly cap, never into a resolved incident."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, select

from bot.background.runtime import Runtime, build_runtime
from bot.crisis.plan import EscalationThresholds
from bot.demo.signed_slack import SlackClient
from bot.demo.slack_emulator import SlackEmulator
from bot.flows.escalations import ESCALATION_POSTED, post_escalations
from bot.infra.clock import ManualClock
from bot.infra.errors import SlackFailure
from bot.infra.settings import Settings
from bot.listening.digests import compute_digest
from bot.listening.escalations import engagement_growth, queue_escalations
from bot.listening.mention_import import import_csv
from bot.listening.mentions import validate_mention
from handlers.slack_gateway import job_gateway
from models import Escalation, Job, Mention, Rumour, TimelineEvent, transaction, utcnow
from models.escalations import CAPPED, DROPPED, PENDING, POSTED
from models.incidents import RESOLVED
from tests.conftest import INGEST_TOKEN, LEAD, AppServer, make_test_plan
from tests.fixtures_drafts import action_ids, message_text, open_war_room
from tests.fixtures_lifecycle import wait_until

AUTH = {"Authorization": f"Bearer {INGEST_TOKEN}"}
ANGRY = "Acme Air lost my bag again, worst airline ever, furious"


def post(n: int, **fields: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "platform": "twitter", "id": f"p{n}", "text": f"{ANGRY} #{n}", "created_at": utcnow().isoformat(),
        "author": f"loud{n}", "author_followers": 80_000, "likes": 10, "shares": 5, "replies": 2,
        "url": f"https://x.example/status/{n}",
    }
    item.update(fields)
    return item


@pytest.fixture
def http(app_server: AppServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=app_server.url, timeout=10) as client:
        yield client


def ingest(http: httpx.Client, *items: dict[str, Any]) -> None:
    response = http.post("/mentions", json={"mentions": list(items)}, headers=AUTH)
    assert response.status_code == 202, response.text


def escalations(runtime: Runtime, incident_id: int | None = None) -> list[Escalation]:
    with transaction(runtime.sessions) as session:
        query = select(Escalation).order_by(Escalation.id)
        if incident_id is not None:
            query = query.where(Escalation.incident_id == incident_id)
        return list(session.scalars(query))


def settled(runtime: Runtime, count: int) -> list[Escalation]:
    """Wait until `count` escalations exist and none is still waiting for the worker."""
    return wait_until(lambda: (rows := escalations(runtime)) and len(rows) == count
                      and all(row.status not in (PENDING, "posting") for row in rows) and rows,
                      what=f"{count} settled escalations")


def escalation_messages(emulator: SlackEmulator, channel_id: str) -> list[dict[str, Any]]:
    return [m for m in emulator.messages(channel_id) if "Escalation" in message_text(m)]


def escalate_jobs(runtime: Runtime) -> int:
    with transaction(runtime.sessions) as session:
        return len(session.scalars(select(Job.id).where(Job.kind == "escalate")).all())


def test_negative_post_from_a_big_account_is_escalated_once_from_any_source(
    runtime: Runtime, emulator: SlackEmulator, http: httpx.Client, clock: ManualClock, tmp_path: Path,
    settings: Settings,
) -> None:
    room = open_war_room(runtime, emulator)
    quiet = post(2, text="Acme Air flight today", author_followers=90_000)  # neutral: not escalated
    small = post(3, author_followers=400)  # negative, small reach: not escalated
    hostile = post(1, text=f"{ANGRY} <!channel> *now*", url="https://x.example/a>b|c")
    ingest(http, hostile, quiet, small)
    [row] = settled(runtime, 1)
    message = wait_until(lambda: escalation_messages(emulator, room.channel_id), what="the escalation")[0]

    with transaction(runtime.sessions) as session:
        mention = session.scalars(select(Mention).where(Mention.external_id == "p1")).one()
        posted = session.get(Escalation, row.id)
        assert posted is not None and posted.posted_at is not None
        # Within 30 s of arriving, on the bot's clock (the worker takes the job as soon as it is committed).
        assert posted.posted_at - mention.ingested_at <= timedelta(seconds=30)
    assert (row.status, row.incident_id, row.mention_id) == (POSTED, room.incident_id, mention.id)
    assert row.slack_ts == message["ts"]
    text = message_text(message)
    assert "80k followers" in text and "engagement 17" in text and "negative" in text
    assert "negative post from an author with 80,000 followers" in text
    assert "&lt;!channel&gt;" in text and "<!channel>" not in text  # escaped: the post cannot ping
    assert "<https://x.example/a%3Eb%7Cc|Open post>" in text
    assert "draft_reply" in action_ids(message)
    [button] = [e for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]
                if e["action_id"] == "draft_reply"]
    assert button["value"] == str(mention.id)
    [call] = [c for c in emulator.calls_to("chat.postMessage") if c.args.get("channel") == room.channel_id]
    assert (call.args.get("unfurl_links"), call.args.get("unfurl_media")) == (False, False)
    with transaction(runtime.sessions) as session:
        [event] = session.scalars(select(TimelineEvent).where(TimelineEvent.kind == ESCALATION_POSTED)).all()
        assert event.incident_id == room.incident_id

    # The same post again (a retry, or a second tool), and through a CSV import: never a second escalation.
    ingest(http, hostile)
    csv = tmp_path / "again.csv"
    csv.write_text("platform,id,text,created_at,author_followers\n"
                   f"twitter,p1,\"{ANGRY}\",{utcnow().isoformat()},80000\n")
    assert import_csv(settings, csv, runtime.plan) == 0
    assert len(escalations(runtime)) == 1 and escalate_jobs(runtime) == 1
    assert len(escalation_messages(emulator, room.channel_id)) == 1

    # A new crossing post arriving through the CSV import is escalated too.
    csv.write_text("platform,id,text,created_at,author_followers\n"
                   f"twitter,p9,\"{ANGRY} by csv\",{utcnow().isoformat()},120000\n")
    assert import_csv(settings, csv, runtime.plan) == 0
    settled(runtime, 2)
    wait_until(lambda: len(escalation_messages(emulator, room.channel_id)) == 2, what="the CSV escalation")


def test_hourly_cap_holds_the_rest_back_and_the_digest_counts_them(
    settings: Settings, emulator: SlackEmulator, clock: ManualClock,
) -> None:
    plan = make_test_plan(escalation=EscalationThresholds(negative_reach=50_000, hourly_cap=2))
    runtime = build_runtime(settings, plan)
    server = AppServer(runtime).start()
    try:
        room = open_war_room(runtime, emulator)
        with httpx.Client(base_url=server.url, timeout=10) as http:
            ingest(http, *[post(n) for n in range(4)])
            rows = settled(runtime, 4)
            assert sorted(row.status for row in rows) == [CAPPED, CAPPED, POSTED, POSTED]
            assert len(escalation_messages(emulator, room.channel_id)) == 2
            with transaction(runtime.sessions) as session:
                figures = compute_digest(session, plan, room.incident_id, utcnow() + timedelta(minutes=1))
            assert figures.escalations_held_back == 2

            # An hour later the cap has room again.
            clock.advance(timedelta(minutes=61))
            ingest(http, post(10))
            settled(runtime, 5)
            wait_until(lambda: len(escalation_messages(emulator, room.channel_id)) == 3, what="a third")
    finally:
        server.stop()
        runtime.engine.dispose()


def test_never_into_a_resolved_incident(
    runtime: Runtime, emulator: SlackEmulator, http: httpx.Client, slack: SlackClient, clock: ManualClock,
) -> None:
    room = open_war_room(runtime, emulator)
    other = open_war_room(runtime, emulator)
    slack.command("resolve Bags found", user_id=LEAD, channel_id=room.channel_id)
    wait_until(lambda: escalated_status(runtime, room.incident_id) == RESOLVED, what="resolved")
    ingest(http, post(1))
    [row] = settled(runtime, 1)
    assert row.incident_id == other.incident_id  # only the open one
    assert escalation_messages(emulator, room.channel_id) == []

    # Queued while open, resolved before the worker got to it: dropped, not posted.
    with transaction(runtime.sessions) as session:
        item, _ = validate_mention(post(2), 0)
        assert item is not None
        session.add(Mention(platform=item.platform, external_id=item.external_id, text=item.text,
                            created_at=item.created_at, author_followers=item.author_followers,
                            sentiment_label="negative", sentiment_score=-0.9))
        session.flush()
        [queued] = queue_escalations(session, runtime.plan, [item], utcnow())
        # Hold its job back, as if every worker were busy, until the incident is resolved.
        session.execute(delete(Job).where(Job.kind == "escalate", Job.status == "queued"))
    slack.command("resolve Done", user_id=LEAD, channel_id=other.channel_id)
    wait_until(lambda: escalated_status(runtime, other.incident_id) == RESOLVED, what="resolved")
    post_escalations(runtime, job_gateway(runtime), [queued])
    assert [r.status for r in escalations(runtime) if r.id == queued] == [DROPPED]
    assert len(escalation_messages(emulator, other.channel_id)) == 1


def escalated_status(runtime: Runtime, incident_id: int) -> str:
    from models import Incident

    with transaction(runtime.sessions) as session:
        incident = session.get(Incident, incident_id)
        assert incident is not None
        return incident.status


def test_engagement_growth_between_two_sightings_and_a_rumour_from_a_big_account(
    runtime: Runtime, emulator: SlackEmulator, http: httpx.Client, clock: ManualClock,
) -> None:
    room = open_war_room(runtime, emulator)
    calm = {"text": "Acme Air boarding now", "author_followers": 300}
    ingest(http, post(1, likes=10, shares=0, replies=0, **calm))
    clock.advance(timedelta(minutes=2))
    ingest(http, post(1, likes=150, shares=0, replies=0, **calm))  # +140 in 2 min: 70/min, under 100
    assert escalations(runtime) == []
    clock.advance(timedelta(minutes=1))
    ingest(http, post(1, likes=400, shares=50, replies=0, **calm))  # +300 in 1 min since the last sighting
    [row] = settled(runtime, 1)
    assert row.figures["growth_per_minute"] == 300
    message = wait_until(lambda: escalation_messages(emulator, room.channel_id), what="growth escalation")[0]
    assert "engagement growing 300/min" in message_text(message)

    with transaction(runtime.sessions) as session:
        session.add(Rumour(incident_id=room.incident_id, claim="Acme Air engines caught fire mid flight",
                           created_by=LEAD))
    ingest(http, post(2, text="Acme Air: the engines caught fire on my flight??", author_followers=20_000,
                      likes=0, shares=0, replies=0))
    rows = settled(runtime, 2)
    assert "tracked rumour" in rows[1].figures["reasons"][0]


def test_growth_is_per_minute_with_the_interval_floored_at_one_minute() -> None:
    start = utcnow()
    assert engagement_growth(10, start, 310, start + timedelta(minutes=3)) == 100
    assert engagement_growth(10, start, 70, start + timedelta(seconds=1)) == 60


def test_an_escalation_slack_refused_waits_and_is_posted_by_the_retry(
    runtime: Runtime, emulator: SlackEmulator, clock: ManualClock,
) -> None:
    room = open_war_room(runtime, emulator)
    with transaction(runtime.sessions) as session:
        item, _ = validate_mention(post(1), 0)
        assert item is not None
        session.add(Mention(platform=item.platform, external_id=item.external_id, text=item.text,
                            created_at=item.created_at, author_followers=item.author_followers,
                            sentiment_label="negative", sentiment_score=-0.9))
        session.flush()
        [queued] = queue_escalations(session, runtime.plan, [item], utcnow())
    emulator.fail("chat.postMessage", error="not_in_channel")
    with pytest.raises(SlackFailure, match="not_in_channel"):
        post_escalations(runtime, job_gateway(runtime), [queued])
    [row] = escalations(runtime)
    assert (row.status, row.posted_at, row.error) == (PENDING, None, "not_in_channel")  # its cap slot is free
    assert post_escalations(runtime, job_gateway(runtime), [queued]) != []
    assert [r.status for r in escalations(runtime)] == [POSTED]
    assert post_escalations(runtime, job_gateway(runtime), [queued]) == []  # a retried job skips it
    assert len(escalation_messages(emulator, room.channel_id)) == 1


def test_a_post_is_escalated_into_each_open_incident_it_belongs_to(
    runtime: Runtime, emulator: SlackEmulator, http: httpx.Client, clock: ManualClock,
) -> None:
    outage = open_war_room(runtime, emulator, playbook="outage")
    other = open_war_room(runtime, emulator, playbook="outage")
    ingest(http, post(1))
    rows = settled(runtime, 2)
    assert sorted(row.incident_id for row in rows) == sorted([outage.incident_id, other.incident_id])
    for room in (outage, other):
        wait_until(lambda room=room: len(escalation_messages(emulator, room.channel_id)) == 1, what="one each")
    # A post that mentions neither the brand nor the playbook's words belongs to no incident.
    ingest(http, post(2, text="worst airline ever, furious, lost my bag"))
    assert len(escalations(runtime)) == 2
