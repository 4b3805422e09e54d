"""Listening with accounts: Bluesky search (app.bsky.feed.searchPosts through the atproto SDK, against
tests/bluesky_server.py) and Mastodon search timelines with a token (tests/mastodon_server.py), through the
scheduler's feed job, into the mentions table."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
import yaml
from sqlalchemy import select

from bot.background.runtime import Runtime
from bot.background.scheduler import Scheduler
from bot.crisis.plan import (
    BUNDLED_PLAN,
    BlueskyAccount,
    BlueskySearch,
    MastodonAccount,
    MastodonFeed,
    Plan,
    PlanError,
    Publishing,
    parse_plan,
)
from bot.demo.slack_emulator import SlackEmulator
from bot.listening import bluesky as bluesky_feed
from bot.listening.bluesky import poll_bluesky_feeds, search_key
from bot.listening.feed_http import fetch
from bot.listening.feeds import mastodon_key, poll_feeds
from handlers.slack_gateway import job_gateway
from models import FeedCursor, Mention, transaction, utcnow
from tests.bluesky_server import FakeBluesky
from tests.conftest import make_test_plan
from tests.mastodon_server import FakeMastodon

HANDLE = "acme-listener.bsky.social"
PASSWORD = "read-only-app-pass"


@pytest.fixture
def bluesky(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeBluesky]:
    monkeypatch.setenv("TEST_BSKY_READ", PASSWORD)
    with FakeBluesky() as server:
        server.add_account(HANDLE, PASSWORD)
        yield server


def bluesky_plan(server: FakeBluesky, *queries: str) -> Plan:
    account = BlueskyAccount(handle=HANDLE, password_env="TEST_BSKY_READ", pds=server.base_url)
    plan = make_test_plan()
    return make_test_plan(feeds=plan.feeds.model_copy(update={"bluesky": BlueskySearch(queries=list(queries),
                                                                                       account=account)}))


def stored(runtime: Runtime, platform: str) -> list[Mention]:
    with transaction(runtime.sessions) as session:
        return list(session.scalars(select(Mention).where(Mention.platform == platform).order_by(Mention.id)))


def cursor_of(runtime: Runtime, key: str) -> FeedCursor:
    with transaction(runtime.sessions) as session:
        found = session.scalars(select(FeedCursor).where(FeedCursor.feed_key == key)).one()
        session.expunge(found)
        return found


def test_bluesky_search_pages_with_the_cursor_dedupes_and_carries_the_counts(
    runtime: Runtime, bluesky: FakeBluesky
) -> None:
    for i in range(60):
        bluesky.add_post(f"user{i}.bsky.social", f"Acme Air lost my bag again {i}", likes=i, reposts=1, replies=2,
                         followers=1000 + i)
    bluesky.add_post("other.bsky.social", "Nothing to do with airlines")
    plan = bluesky_plan(bluesky, "acme air", "bag again 5")
    runtime.plan = plan
    scheduler = Scheduler(runtime, job_gateway(runtime))
    assert "feeds" in [job.name for job in scheduler.periodic_jobs()]  # polled on the feed schedule

    assert scheduler.poll_feeds(utcnow()) == 60  # "bag again 5*" matched posts already stored: deduped
    mentions = stored(runtime, "bluesky")
    assert len(mentions) == 60 and len({m.external_id for m in mentions}) == 60
    first = next(m for m in mentions if m.text == "Acme Air lost my bag again 7")
    assert first.external_id.startswith("at://did:plc:") and first.author == "user7.bsky.social"
    assert (first.author_followers, first.likes, first.shares, first.replies) == (1007, 7, 1, 2)
    assert first.url == f"https://bsky.app/profile/user7.bsky.social/post/{first.external_id.rsplit('/', 1)[-1]}"
    searches = [c for c in bluesky.calls_to("app.bsky.feed.searchPosts") if c.params["q"] == ["acme air"]]
    assert [c.params.get("cursor") for c in searches] == [None, ["50"]]  # the second page by the cursor
    assert all(c.headers["authorization"].startswith("Bearer ") for c in searches)

    bluesky.calls.clear()
    bluesky.add_post("late.bsky.social", "Acme Air still silent")
    assert scheduler.poll_feeds(utcnow() + timedelta(minutes=5)) == 1
    assert [c.params.get("cursor") for c in bluesky.calls_to("app.bsky.feed.searchPosts")] == [None, None]
    assert len(stored(runtime, "bluesky")) == 61


def test_a_pass_cut_short_resumes_from_its_saved_cursor(
    runtime: Runtime, bluesky: FakeBluesky, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bluesky_feed, "PAGE", 10)
    monkeypatch.setattr(bluesky_feed, "MAX_PAGES", 2)
    for i in range(45):
        bluesky.add_post(f"u{i}.bsky.social", f"acme air delay {i}")
    plan = bluesky_plan(bluesky, "acme air")
    key = search_key("acme air")
    now = utcnow()
    assert [r.accepted for r in poll_bluesky_feeds(runtime.sessions, plan, now)] == [20]
    assert cursor_of(runtime, key).cursor["cursor"] == "20"
    assert [r.accepted for r in poll_bluesky_feeds(runtime.sessions, plan, now)] == [20]
    assert [r.accepted for r in poll_bluesky_feeds(runtime.sessions, plan, now)] == [5]
    assert "cursor" not in cursor_of(runtime, key).cursor
    assert len(stored(runtime, "bluesky")) == 45


def test_bluesky_rate_limit_stops_polling_until_the_reset(runtime: Runtime, bluesky: FakeBluesky) -> None:
    bluesky.add_post("u.bsky.social", "acme air again")
    plan = bluesky_plan(bluesky, "acme air")
    key = search_key("acme air")
    bluesky.fail_next("rate_limit", nsid="app.bsky.feed.searchPosts")
    now = utcnow()
    [result] = poll_bluesky_feeds(runtime.sessions, plan, now)
    assert result.skipped
    reset = cursor_of(runtime, key).next_poll_at
    assert reset is not None and reset > now + timedelta(minutes=5)
    calls = len(bluesky.calls)
    assert poll_bluesky_feeds(runtime.sessions, plan, now + timedelta(minutes=1))[0].skipped
    assert len(bluesky.calls) == calls  # not even a sign-in before the reset
    assert poll_bluesky_feeds(runtime.sessions, plan, reset + timedelta(seconds=1))[0].accepted == 1

    bluesky.rate_limit = 1  # the answer says `ratelimit-remaining: 0`: the next poll waits for the reset
    bluesky.add_post("v.bsky.social", "acme air once more")
    poll_bluesky_feeds(runtime.sessions, plan, reset + timedelta(minutes=1))
    assert cursor_of(runtime, key).next_poll_at is not None


def test_bluesky_search_without_its_password_is_recorded_not_raised(
    runtime: Runtime, bluesky: FakeBluesky, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TEST_BSKY_READ")
    [result] = poll_bluesky_feeds(runtime.sessions, bluesky_plan(bluesky, "acme air"), utcnow())
    assert "$TEST_BSKY_READ is not set" in (result.error or "")
    assert "$TEST_BSKY_READ is not set" in (cursor_of(runtime, search_key("acme air")).error or "")
    assert bluesky.calls == []


def test_feeds_bluesky_needs_an_account() -> None:
    data = yaml.safe_load(BUNDLED_PLAN.read_text())
    data["feeds"]["bluesky"] = {"queries": ["acme air"]}
    with pytest.raises(PlanError, match="feeds.bluesky: Bluesky search needs a signed-in account"):
        parse_plan(yaml.safe_dump(data))
    data["publishing"]["bluesky"] = {"handle": HANDLE, "password_env": "TEST_BSKY_READ"}
    assert parse_plan(yaml.safe_dump(data)).feeds.bluesky is not None  # the publishing account searches


def test_mastodon_search_with_a_token(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeMastodon() as mastodon:
        mastodon.add_account("acmeair", "search-token")
        for i in range(3):
            mastodon.add_status(f"Acme Air cancelled my flight {i}", username=f"u{i}", followers=10 + i)
        mastodon.add_status("unrelated")
        monkeypatch.setenv("TEST_MASTODON_TOKEN", "search-token")
        feed = MastodonFeed(instance=mastodon.base_url, search="acme air")
        plan = make_test_plan(
            feeds=make_test_plan().feeds.model_copy(update={"mastodon": [feed]}),
            publishing=Publishing(mastodon=MastodonAccount(instance=mastodon.base_url,
                                                           token_env="TEST_MASTODON_TOKEN")),
        )
        port = int(mastodon.base_url.rsplit(":", 1)[1])
        allow = frozenset({("127.0.0.1", port)})
        [result] = poll_feeds(runtime.sessions, plan, utcnow(), allow=allow)
        assert result.accepted == 3 and not result.skipped
        [search] = mastodon.calls_to("GET", "/api/v2/search")
        assert search.headers["authorization"] == "Bearer search-token"
        assert search.query["type"] == ["statuses"] and search.query["q"] == ["acme air"]
        assert sorted(m.author_followers for m in stored(runtime, "mastodon")) == [10, 11, 12]

        mastodon.add_status("Acme Air finally answered", username="u9")
        [again] = poll_feeds(runtime.sessions, plan, utcnow() + timedelta(minutes=5), allow=allow)
        assert again.accepted == 1
        assert mastodon.calls_to("GET", "/api/v2/search")[-1].query.get("min_id")  # from the cursor
        assert cursor_of(runtime, mastodon_key(feed)).error is None

        monkeypatch.delenv("TEST_MASTODON_TOKEN")
        [skipped] = poll_feeds(runtime.sessions, plan, utcnow() + timedelta(minutes=10), allow=allow)
        assert skipped.skipped and "$TEST_MASTODON_TOKEN is not set" in (skipped.error or "")


def test_a_token_never_follows_a_redirect_to_another_host() -> None:
    seen: list[tuple[str, str | None]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append((request.url.host, request.headers.get("Authorization")))
        if request.url.path == "/api/v2/search":
            return httpx.Response(302, headers={"Location": "/moved"})
        if request.url.path == "/moved":
            return httpx.Response(302, headers={"Location": "https://elsewhere.example/steal"})
        return httpx.Response(200, stream=httpx.ByteStream(b'{"statuses": []}'))

    with httpx.Client(transport=httpx.MockTransport(answer)) as client:
        fetched = fetch(client, "https://mastodon.example/api/v2/search", headers={"Authorization": "Bearer t"})
    assert fetched.status_code == 200
    assert seen == [("mastodon.example", "Bearer t"), ("mastodon.example", "Bearer t"), ("elsewhere.example", None)]


def test_a_crossing_bluesky_post_escalates_like_any_other_source(
    runtime: Runtime, bluesky: FakeBluesky, emulator: SlackEmulator
) -> None:
    from bot.crisis.plan import EscalationThresholds
    from bot.listening.escalations import ESCALATE_JOB
    from models import Escalation, Job
    from models.escalations import PENDING
    from tests.fixtures_drafts import open_war_room

    bluesky.add_post("loud.bsky.social", "Acme Air lost my bag again, worst airline ever, furious", followers=120_000)
    bluesky.add_post("quiet.bsky.social", "Acme Air lost my bag again, worst airline ever, furious!", followers=10)
    base = bluesky_plan(bluesky, "acme air")
    runtime.plan = base.model_copy(update={"escalation": EscalationThresholds(negative_reach=50_000)})
    room = open_war_room(runtime, emulator)

    assert Scheduler(runtime, job_gateway(runtime)).poll_feeds(utcnow()) == 2
    with transaction(runtime.sessions) as session:
        rows = list(session.scalars(select(Escalation)))
        jobs = list(session.scalars(select(Job).where(Job.kind == ESCALATE_JOB)))
        [mention] = session.scalars(select(Mention).where(Mention.author == "loud.bsky.social")).all()
    assert [(row.incident_id, row.mention_id, row.status) for row in rows] == [(room.incident_id, mention.id, PENDING)]
    assert len(jobs) == 1
