"""Digest figures against an independent computation, rendering safety, and `/crisis digest` end to end."""

from __future__ import annotations

import json
import math
import random
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, select

from bot.background.runtime import Runtime
from bot.demo.signed_slack import SlackClient
from bot.demo.slack_emulator import SlackEmulator
from bot.listening.digests import compute_digest, record_digest, rising_terms
from bot.listening.mentions import STOP_WORDS, incident_keywords, significant_words
from handlers.render.digest import render_digest
from models import Digest, Rumour, TimelineEvent, transaction, utcnow
from tests.conftest import LEAD
from tests.fixtures_mentions import add_mentions, make_incident

WORDS = [
    "acme air",
    "AcmeAir",
    "delayed",
    "flight",
    "pilots",
    "strike",
    "tomorrow",
    "crew",
    "thanks",
    "pizza",
    "weather",
    "bag",
    "refund",
    "gate",
    "lovely",
    "sunday",
    "@acmeair",
]
LABELS = ["negative", "neutral", "positive"]


def random_rows(now: datetime, count: int, seed: int = 42) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    rows = []
    for n in range(count):
        rows.append(
            {
                "text": " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 7))),
                "created_at": now - timedelta(seconds=rng.randint(1, 4 * 3600)),
                "author": f"user{rng.randint(1, 40):02d}",
                "author_followers": rng.choice([0, 5, 120, 3000, 45000, 1_200_000]) + rng.randint(0, 9),
                "likes": rng.randint(0, 50),
                "shares": rng.randint(0, 20),
                "replies": rng.randint(0, 10),
                "sentiment_label": rng.choice(LABELS),
                "url": f"https://social.example/{n}",
            }
        )
    return rows


def expected_figures(
    rows: list[dict[str, Any]],
    ids: list[int],
    keywords: list[str],
    opened: datetime,
    since: datetime,
    end: datetime,
    minutes: int,
    claim_words: list[str],
) -> dict[str, Any]:
    """The same figures in plain Python, written from the definitions, not from the SQL."""
    matching = [
        dict(row, id=i)
        for row, i in zip(rows, ids, strict=True)
        if any(k in row["text"].lower() for k in keywords)
    ]
    start = end - timedelta(minutes=minutes)
    window = [r for r in matching if max(start, since) <= r["created_at"] < end]
    previous = [
        r for r in matching if max(start - timedelta(minutes=minutes), since) <= r["created_at"] < start
    ]

    def rank(r: dict[str, Any]) -> float:
        return (r["author_followers"] + 1.0) * (r["likes"] + r["shares"] + r["replies"] + 1.0)

    top = sorted(window, key=lambda r: (-rank(r), r["id"]))[:5]
    by_author: dict[str, list[dict[str, Any]]] = {}
    for r in window:
        by_author.setdefault(r["author"], []).append(r)
    influencers = sorted(
        by_author, key=lambda a: (-max(r["author_followers"] for r in by_author[a]), -len(by_author[a]), a)
    )[:5]
    negative_by_author = {
        a: [r for r in rs if r["sentiment_label"] == "negative"] for a, rs in by_author.items()
    }
    detractors = sorted(
        (a for a, rs in negative_by_author.items() if rs),
        key=lambda a: (
            -(max(r["author_followers"] for r in negative_by_author[a]) + 1.0) * len(negative_by_author[a]),
            a,
        ),
    )[:5]
    need = math.ceil(len(claim_words) * 2 / 3)
    rumour = [
        r
        for r in matching
        if r["created_at"] >= since and sum(w in r["text"].lower() for w in claim_words) >= need
    ]
    width = minutes * 60  # buckets of the cadence from the lookback before opening
    series: dict[int, int] = {}
    for r in matching:
        if since <= r["created_at"] < end:
            index = int((r["created_at"] - since).total_seconds() // width)
            series[index] = series.get(index, 0) + 1
    return {
        "volume": len(window),
        "previous": len(previous),
        "split": {label: sum(r["sentiment_label"] == label for r in window) for label in LABELS},
        "top": [r["id"] for r in top],
        "influencers": influencers,
        "detractors": detractors,
        "rumour_window": sum(start <= r["created_at"] < end for r in rumour),
        "rumour_total": len(rumour),
        "series": series,
    }


def test_figures_match_an_independent_computation(runtime: Runtime, emulator: SlackEmulator) -> None:
    now = utcnow()
    incident = make_incident(runtime, emulator, opened_at=now - timedelta(hours=3))
    rows = random_rows(now, 800)
    ids = add_mentions(runtime, rows)
    with transaction(runtime.sessions) as session:
        session.add(
            Rumour(incident_id=incident.id, claim="Acme Air pilots are on strike tomorrow", created_by=LEAD)
        )
    with transaction(runtime.sessions) as session:
        figures = compute_digest(session, runtime.plan, incident.id, now)

    keywords = incident_keywords(runtime.plan, "outage")
    claim_words = significant_words("Acme Air pilots are on strike tomorrow", runtime.plan.brand.keywords)
    assert claim_words == ["pilots", "strike", "tomorrow"]
    since = incident.opened_at - timedelta(minutes=runtime.plan.mentions.lookback_minutes)
    expected = expected_figures(rows, ids, keywords, incident.opened_at, since, now, 30, claim_words)

    assert figures.window_minutes == 30  # sev2's cadence in the example plan
    assert figures.volume == expected["volume"] > 0
    assert figures.previous_volume == expected["previous"]
    assert figures.sentiment == expected["split"]
    assert [post.mention_id for post in figures.top_posts] == expected["top"]
    assert [voice.author for voice in figures.influencers] == expected["influencers"]
    assert [voice.author for voice in figures.detractors] == expected["detractors"]
    [rumour] = figures.rumours
    assert (rumour.window_matches, rumour.total_matches) == (
        expected["rumour_window"],
        expected["rumour_total"],
    )
    assert rumour.example is not None
    assert {i: p.volume for i, p in enumerate(figures.series) if p.volume} == expected["series"]
    assert figures.change == pytest.approx((expected["volume"] - expected["previous"]) / expected["previous"])
    top = figures.top_posts[0]
    assert top.influence == pytest.approx(
        math.log10(1 + top.followers) + math.log10(1 + top.engagement), abs=1e-3
    )
    json.dumps(figures.as_json())  # storable as the Digest row's JSON


def test_totals_carried_from_the_previous_digest_equal_a_full_recount(
    runtime: Runtime, emulator: SlackEmulator
) -> None:
    now = utcnow()
    incident = make_incident(runtime, emulator, opened_at=now - timedelta(hours=3))
    rows = random_rows(now, 600, seed=3)
    early = [row for row in rows if row["created_at"] < now - timedelta(minutes=40)]
    late = [row for row in rows if row["created_at"] >= now - timedelta(minutes=40)]
    add_mentions(runtime, early)
    with transaction(runtime.sessions) as session:
        session.add(Rumour(incident_id=incident.id, claim="pilots strike tomorrow", created_by=LEAD))
    with transaction(runtime.sessions) as session:
        earlier = compute_digest(session, runtime.plan, incident.id, now - timedelta(minutes=40))
        record_digest(session, earlier, kind="scheduled", requested_by=None, channel_id="C1", slack_ts="1.0")
    add_mentions(runtime, late)
    with transaction(runtime.sessions) as session:
        carried = compute_digest(session, runtime.plan, incident.id, now)
    with transaction(runtime.sessions) as session:
        session.execute(delete(Digest))
    with transaction(runtime.sessions) as session:
        recounted = compute_digest(session, runtime.plan, incident.id, now)
    assert carried.series == recounted.series and carried.total_since_open > earlier.total_since_open
    assert [r.total_matches for r in carried.rumours] == [r.total_matches for r in recounted.rumours]
    assert carried.rumours[0].total_matches > earlier.rumours[0].total_matches


def test_rising_terms_are_those_whose_share_rose() -> None:
    previous = ["delayed flight again"] * 10 + ["lovely crew"] * 10
    current = ["delayed flight"] * 10 + ["refund please refund"] * 6 + ["refund now"] * 2 + ["the of and"] * 4
    terms = rising_terms(current, previous, set(STOP_WORDS))
    assert [term.term for term in terms] == [
        "refund",
        "please",
    ]  # "now" is a stop word; "delayed" held steady
    assert (terms[0].posts, terms[0].previous) == (8, 0)
    assert rising_terms([], previous, set(STOP_WORDS)) == []


def test_spike_flag_uses_the_plan_thresholds(runtime: Runtime, emulator: SlackEmulator) -> None:
    now = utcnow()
    incident = make_incident(runtime, emulator, opened_at=now - timedelta(hours=6))
    calm = [
        {"text": "acme air flight", "created_at": now - timedelta(minutes=40 + 30 * (n % 8), seconds=n)}
        for n in range(40)
    ]
    burst = [
        {
            "text": "acme air delayed again",
            "created_at": now - timedelta(seconds=10 + n),
            "sentiment_label": "negative",
        }
        for n in range(60)
    ]
    add_mentions(runtime, calm + burst)
    with transaction(runtime.sessions) as session:
        figures = compute_digest(session, runtime.plan, incident.id, now)
    assert figures.volume == 60
    assert figures.spike
    assert any("negative" in reason for reason in figures.spike_reasons)


def test_untrusted_text_cannot_ping_and_stays_within_limits(
    runtime: Runtime, emulator: SlackEmulator
) -> None:
    now = utcnow()
    incident = make_incident(runtime, emulator)
    add_mentions(
        runtime,
        [
            {
                "text": "acme air <!channel> <!here> <@U0LEAD> *bold* " + "x" * 5000,
                "author": "<!everyone> & co",
                "created_at": now - timedelta(minutes=1),
                "author_followers": 10,
                "url": "https://evil.example/a>b|<!channel>",
            }
        ],
    )
    with transaction(runtime.sessions) as session:
        figures = compute_digest(session, runtime.plan, incident.id, now)
    blocks = [block.to_dict() for block in render_digest(figures, runtime.plan.brand.name)]
    text = json.dumps(blocks)
    for ping in ("<!channel>", "<!here>", "<@U0LEAD>", "<!everyone>"):
        assert ping not in text
    assert "&lt;!channel&gt;" in text
    for block in blocks:
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= 3000


def _digest_message(emulator: SlackEmulator, channel: str) -> dict[str, Any]:
    return next(m for m in emulator.messages(channel) if m.get("blocks"))


def test_crisis_digest_posts_figures_buttons_and_chart(
    slack: SlackClient, runtime: Runtime, emulator: SlackEmulator
) -> None:
    now = utcnow()
    incident = make_incident(runtime, emulator)
    ids = add_mentions(runtime, random_rows(now, 300, seed=7))
    slack.command("digest", user_id=LEAD, channel_id=incident.channel_id)

    assert incident.channel_id is not None
    message = emulator.wait_for(lambda emu: _digest_message(emu, incident.channel_id))  # type: ignore[arg-type]
    buttons = [
        element
        for block in message["blocks"]
        if block.get("accessory")
        for element in [block["accessory"]]
        if element.get("action_id") == "draft_reply"
    ]
    assert 1 <= len(buttons) <= 5
    assert all(int(button["value"]) in ids for button in buttons)
    *_, post = [call for call in emulator.calls_to("chat.postMessage")
                if call.args.get("channel") == incident.channel_id and call.args.get("blocks")]
    assert (post.args.get("unfurl_links"), post.args.get("unfurl_media")) == (False, False)  # quoted posts stay small
    chart = emulator.wait_for(lambda emu: emu.files[0], timeout=30)  # first matplotlib import is slow
    assert chart["bytes"].startswith(b"\x89PNG")
    assert chart["channel"] == incident.channel_id and chart["thread_ts"] == message["ts"]
    assert emulator.errors == []

    def stored(_: SlackEmulator) -> Digest | None:
        with transaction(runtime.sessions) as session:
            return session.scalars(select(Digest)).one_or_none()

    digest = emulator.wait_for(stored, timeout=10)
    assert digest is not None
    assert (digest.kind, digest.requested_by, digest.slack_ts, digest.error) == (
        "manual",
        LEAD,
        message["ts"],
        None,
    )
    assert digest.figures["volume"] >= len(buttons)
    with transaction(runtime.sessions) as session:
        events = session.scalars(select(TimelineEvent).where(TimelineEvent.kind == "digest.posted")).all()
    assert len(events) == 1 and events[0].actor == LEAD and events[0].data["digest_id"] == digest.id


def test_an_empty_window_gets_a_quiet_digest_without_chart(
    slack: SlackClient, runtime: Runtime, emulator: SlackEmulator
) -> None:
    incident = make_incident(runtime, emulator)
    slack.command("digest", user_id=LEAD, channel_id=incident.channel_id)
    message = emulator.wait_for(lambda emu: _digest_message(emu, incident.channel_id))  # type: ignore[arg-type]
    assert "Quiet" in json.dumps(message["blocks"])
    assert emulator.files == []
    assert emulator.errors == []


def test_digest_outside_an_incident_channel_says_where(slack: SlackClient, emulator: SlackEmulator) -> None:
    response = slack.command("digest", user_id=LEAD)
    assert response.status_code == 200
    answer = emulator.wait_for(lambda emu: emu.responses[-1][1])
    assert "works in an incident channel" in answer["text"]
