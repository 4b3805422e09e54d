"""POST /mentions through the running app: auth, size, validation, dedupe, storage with sentiment."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from bot.background.runtime import Runtime, build_runtime
from bot.demo.slack_emulator import SlackEmulator
from bot.listening.digests import compute_digest
from bot.listening.mentions import MAX_COUNT
from models import Mention, transaction, utcnow
from tests.conftest import INGEST_TOKEN, AppServer, make_settings, make_test_plan
from tests.fixtures_mentions import make_incident, with_raw_field

AUTH = {"Authorization": f"Bearer {INGEST_TOKEN}"}


def mention(n: int, **fields: Any) -> dict[str, Any]:
    item = {
        "platform": "twitter",
        "id": f"t{n}",
        "text": f"Acme Air lost my bag again #{n}",
        "created_at": "2024-05-01T12:00:00Z",
        "author": f"user{n}",
        "author_followers": n * 10,
        "likes": 1,
        "shares": 2,
        "replies": 3,
        "url": f"https://x.example/{n}",
        "lang": "en",
    }
    item.update(fields)
    return item


@pytest.fixture
def http(app_server: AppServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=app_server.url, timeout=10) as client:
        yield client


def stored(runtime: Runtime) -> list[Mention]:
    with transaction(runtime.sessions) as session:
        return list(session.scalars(select(Mention).order_by(Mention.id)))


def test_single_mention_is_stored_with_sentiment(http: httpx.Client, runtime: Runtime) -> None:
    response = http.post("/mentions", json=mention(1, created_at="2024-05-01T14:00:00+02:00"), headers=AUTH)
    assert response.status_code == 202
    assert response.json() == {"accepted": 1, "duplicates": 0}
    [row] = stored(runtime)
    assert (row.platform, row.external_id, row.author_followers, row.likes, row.shares, row.replies) == (
        "twitter",
        "t1",
        10,
        1,
        2,
        3,
    )
    assert row.created_at.isoformat() == "2024-05-01T12:00:00+00:00"
    assert row.sentiment_label == "negative" and -1 <= row.sentiment_score < 0
    assert row.source == "webhook"


def test_batch_counts_duplicates_within_the_batch_and_against_the_table(
    http: httpx.Client, runtime: Runtime
) -> None:
    first = http.post("/mentions", json={"mentions": [mention(1), mention(2), mention(1)]}, headers=AUTH)
    assert first.json() == {"accepted": 2, "duplicates": 1}
    second = http.post(
        "/mentions",
        json={"mentions": [mention(2), mention(3), mention(3, platform="Mastodon")]},
        headers=AUTH,
    )
    assert second.status_code == 202
    assert second.json() == {"accepted": 2, "duplicates": 1}
    assert sorted((m.platform, m.external_id) for m in stored(runtime)) == [
        ("mastodon", "t3"),
        ("twitter", "t1"),
        ("twitter", "t2"),
        ("twitter", "t3"),
    ]


def test_concurrent_identical_batches_store_each_post_once(
    http: httpx.Client, runtime: Runtime, app_server: AppServer
) -> None:
    batch = {"mentions": [mention(n) for n in range(200)]}
    answers: list[dict[str, int]] = []

    def send() -> None:
        with httpx.Client(base_url=app_server.url, timeout=20) as client:
            answers.append(client.post("/mentions", json=batch, headers=AUTH).json())

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(answer["accepted"] for answer in answers) == 200
    assert sum(answer["duplicates"] for answer in answers) == 600
    assert len(stored(runtime)) == 200


def test_bad_batch_lists_every_problem_and_stores_nothing(http: httpx.Client, runtime: Runtime) -> None:
    items = [
        mention(1),
        mention(2, created_at="2024-05-01T12:00:00"),  # no offset
        {"platform": "twitter", "text": "hi", "created_at": "yesterday"},
        mention(4, likes=-1, author_followers="many", url="javascript:alert(1)"),
        "not an object",
    ]
    response = http.post("/mentions", json={"mentions": items}, headers=AUTH)
    assert response.status_code == 400
    body = response.json()
    assert "nothing was stored" in body["error"]
    problems = {(error["index"], error["field"]) for error in body["errors"]}
    assert problems == {
        (1, "created_at"),
        (2, "id"),
        (2, "created_at"),
        (3, "likes"),
        (3, "author_followers"),
        (3, "url"),
        (4, "(item)"),
    }
    offset = next(e for e in body["errors"] if e["index"] == 1)
    assert "UTC offset" in offset["message"]
    assert stored(runtime) == []


def post_raw(http: httpx.Client, body: Any) -> httpx.Response:
    """POST a body as ASCII JSON: a lone surrogate travels as a `\\ud83d` escape, as a buggy client sends it."""
    return http.post("/mentions", content=json.dumps(body).encode(),
                     headers={**AUTH, "Content-Type": "application/json"})


UNSTORABLE = {
    "lone high surrogate": ("\ud83d", "lone surrogate"),
    "lone low surrogate inside text": ("bag \udfff lost", "lone surrogate"),
    "NUL": ("\x00", "NUL character"),
    "NUL inside text": ("lost\x00bag", "NUL character"),
}


@pytest.mark.parametrize("field", ["platform", "id", "text", "author", "url", "lang", "created_at"])
@pytest.mark.parametrize("case", list(UNSTORABLE))
def test_text_that_cannot_be_stored_is_a_field_error_in_every_string_field(
    http: httpx.Client, runtime: Runtime, field: str, case: str
) -> None:
    bad, message = UNSTORABLE[case]
    value = {"url": f"https://x.example/{bad}", "created_at": f"2024-05-01T12:00:00Z{bad}"}.get(field, bad)
    response = post_raw(http, {"mentions": [mention(1), mention(2, **{field: value})]})
    assert response.status_code == 400, response.text
    body = response.json()
    assert "nothing was stored" in body["error"]
    assert [(error["index"], error["field"]) for error in body["errors"]] == [(1, field)]
    assert message in body["errors"][0]["message"]
    assert stored(runtime) == []


def test_valid_astral_characters_and_controls_are_still_stored_exactly(http: httpx.Client, runtime: Runtime) -> None:
    text = "Acme 😡 lost my bag \u202e\x07\ufeff 𝕏"  # a real surrogate *pair* in JSON is one character
    response = post_raw(http, mention(1, text=text, author="𝕏 user 😡"))
    assert response.status_code == 202, response.text
    [row] = stored(runtime)
    assert (row.text, row.author) == (text, "𝕏 user 😡")


DEEP_ARRAY = "[" * 50_000 + "]" * 50_000
DEEP_OBJECT = '{"a":' * 50_000 + "1" + "}" * 50_000
# Valid JSON a field cannot take: (field, raw JSON value, words of the message).
ODDITIES = {
    "year 1 pushed before it by its offset": ("created_at", '"0001-01-01T00:00:00+01:00"', "out of range"),
    "year 9999 pushed past it by its offset": ("created_at", '"9999-12-31T23:59:59-01:00"', "out of range"),
    "a 5,000-digit count": ("likes", "9" * 5000, "between 0 and"),
    "a negative 5,000-digit count": ("author_followers", "-" + "9" * 5000, "between 0 and"),
    "a count past BIGINT": ("shares", str(2**63), "between 0 and"),
    "a count too large to add up in SQL": ("replies", str(2**63 - 1), "between 0 and"),
    "a negative count": ("replies", "-1", "between 0 and"),
    "an infinite count": ("likes", "1e400", "whole number"),
    "a fractional count": ("likes", "1.5", "whole number"),
    "a 5,000-digit id": ("id", "9" * 5000, "longer than 200"),
    "a 5,000-digit number as text": ("text", "9" * 5000, "must be a string"),
    "50,000 nested arrays as text": ("text", DEEP_ARRAY, "nested"),
    "50,000 nested objects as a count": ("likes", DEEP_OBJECT, "nested"),
    "50,000 nested arrays in a field War Room ignores": ("extra", DEEP_ARRAY, "nested"),
    "100 nested arrays (json.loads would take them)": ("extra", "[" * 100 + "]" * 100, "nested"),
}


@pytest.mark.parametrize("case", list(ODDITIES))
def test_valid_json_a_field_cannot_take_is_a_field_error_never_a_500(http: httpx.Client, runtime: Runtime,
                                                                      case: str) -> None:
    field, raw, message = ODDITIES[case]
    odd = with_raw_field(mention(2), field, raw)
    for body, index in ((odd, 0), (f'{{"mentions": [{json.dumps(mention(1))}, {odd}]}}', 1)):
        response = http.post("/mentions", content=body.encode(), headers={**AUTH, "Content-Type": "application/json"})
        assert response.status_code == 400, response.text[:300]
        payload = response.json()
        assert "nothing was stored" in payload["error"]
        assert [(error["index"], error["field"]) for error in payload["errors"]] == [(index, field)]
        assert message in payload["errors"][0]["message"]
    assert stored(runtime) == []


def test_a_body_nested_32_levels_deep_is_accepted(http: httpx.Client, runtime: Runtime) -> None:
    """32 levels in all, the body's own included: 31 arrays in a field of one mention, 29 in a batch's."""
    single = with_raw_field(mention(1), "extra", "[" * 31 + "]" * 31)
    batch = f'{{"mentions": [{with_raw_field(mention(2), "extra", "[" * 29 + "]" * 29)}]}}'
    for body in (single, batch):
        response = http.post("/mentions", content=body.encode(), headers={**AUTH, "Content-Type": "application/json"})
        assert response.status_code == 202, response.text
    assert len(stored(runtime)) == 2
    one_more = with_raw_field(mention(3), "extra", "[" * 32 + "]" * 32)
    response = http.post("/mentions", content=one_more.encode(), headers={**AUTH, "Content-Type": "application/json"})
    assert response.status_code == 400


@pytest.mark.parametrize("body", [DEEP_ARRAY, '{"mentions": ' + DEEP_ARRAY + "}", '{"mentions": {"a": ' + DEEP_OBJECT
                                  + "}}"])
def test_a_body_nested_too_deep_outside_any_mention_is_a_clear_400(http: httpx.Client, body: str) -> None:
    response = http.post("/mentions", content=body.encode(), headers={**AUTH, "Content-Type": "application/json"})
    assert response.status_code == 400
    assert "nested" in response.json()["error"]


def test_the_largest_counts_accepted_still_rank_in_a_digest(http: httpx.Client, runtime: Runtime,
                                                            emulator: SlackEmulator) -> None:
    """Digests rank posts by followers and likes + shares + replies, added up in SQL: three counts at the
    webhook's maximum must add up within PostgreSQL's BIGINT (2**63 - 1 each overflowed it)."""
    incident = make_incident(runtime, emulator)
    now = utcnow()
    counts = dict.fromkeys(("author_followers", "likes", "shares", "replies"), MAX_COUNT)
    item = mention(1, text="Acme Air flights delayed", created_at=(now - timedelta(minutes=5)).isoformat(), **counts)
    response = http.post("/mentions", json=item, headers=AUTH)
    assert response.status_code == 202, response.text
    with transaction(runtime.sessions) as session:
        figures = compute_digest(session, runtime.plan, incident.id, now)
    [top] = figures.top_posts
    assert (top.followers, top.engagement) == (MAX_COUNT, 3 * MAX_COUNT)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "mention object"),
        (b'{"mentions": {"id": 1}}', "JSON array"),
    ],
)
def test_malformed_bodies_get_a_clear_400(http: httpx.Client, body: bytes, message: str) -> None:
    response = http.post("/mentions", content=body, headers={**AUTH, "Content-Type": "application/json"})
    assert response.status_code == 400
    assert message in response.json()["error"]


def test_more_than_a_thousand_items_is_refused(http: httpx.Client, runtime: Runtime) -> None:
    response = http.post("/mentions", json={"mentions": [mention(n) for n in range(1001)]}, headers=AUTH)
    assert response.status_code == 400
    assert "at most 1,000" in response.json()["error"]
    assert stored(runtime) == []


def test_wrong_or_missing_token_is_401(http: httpx.Client, runtime: Runtime) -> None:
    for headers in (
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Basic {INGEST_TOKEN}"},
        {"Authorization": f"Bearer {INGEST_TOKEN}x"},
    ):
        response = http.post("/mentions", json=mention(1), headers=headers)
        assert response.status_code == 401
    assert stored(runtime) == []


def test_body_over_five_megabytes_is_413(http: httpx.Client, runtime: Runtime) -> None:
    big = json.dumps({"mentions": [mention(1, text="x" * 6_000_000)]}).encode()
    response = http.post("/mentions", content=big, headers={**AUTH, "Content-Type": "application/json"})
    assert response.status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit holds while reading
        for start in range(0, len(big), 65536):
            yield big[start : start + 65536]

    chunked = http.post("/mentions", content=chunks(), headers={**AUTH, "Content-Type": "application/json"})
    assert chunked.status_code == 413
    assert stored(runtime) == []


def test_unset_token_answers_503(database_url: str, emulator: SlackEmulator) -> None:
    runtime = build_runtime(make_settings(database_url, emulator, warroom_ingest_token=""), make_test_plan())
    server = AppServer(runtime).start()
    try:
        response = httpx.post(f"{server.url}/mentions", json=mention(1), headers=AUTH)
        assert response.status_code == 503
        assert "WARROOM_INGEST_TOKEN" in response.json()["error"]
    finally:
        server.stop()
        runtime.engine.dispose()
