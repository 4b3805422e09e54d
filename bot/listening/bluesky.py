"""Listening on Bluesky: the plan's `feeds.bluesky` queries, searched with `app.bsky.feed.searchPosts`.

Why search and not the Jetstream firehose: Jetstream is every post on the network (hundreds per second at
peak, tens of GB a day of JSON) to filter locally for a few keywords, over a websocket that must never stop:
a long-lived consumer, reconnects with a time cursor, and no like/repost/follower counts in the events (each
would cost an AppView call anyway). searchPosts is one HTTPS call per query per poll, already ranked,
with the counts the digest needs; it needs a signed-in account (an app password) and is rate-limited, which
War Room honours. A crisis team watching a handful of keywords on a 5-minute cadence is the search case.

Each query has its own cursor row. A pass reads newest first from the top, page by page (`cursor`), until it
reaches posts the previous complete pass had seen (`since`, their indexedAt) or the last page; a pass cut
short by MAX_PAGES saves the page cursor and resumes there on the next poll, so a burst is read in full.
Posts become mentions (dedupe: platform + at-uri), with author followers (`getProfiles`, one call for a
page's authors), likes, reposts, replies and the bsky.app URL. A 429, or `ratelimit-remaining: 0` on any
answer, stops that account's polling until `ratelimit-reset`.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from atproto import Client
from atproto_client.exceptions import RateLimitExceededError
from atproto_client.request import Request
from sqlalchemy.orm import Session, sessionmaker

from bot.crisis.plan import BlueskyAccount, BlueskySearch, Plan
from bot.listening.escalations import queue_escalations
from bot.listening.feeds import PollResult, _cursor, _storable
from bot.listening.mentions import store_mentions
from models import transaction

log = logging.getLogger(__name__)
PAGE = 50
MAX_PAGES = 5
TIMEOUT = 20.0


def search_key(query: str) -> str:
    return f"bluesky:search:{' '.join(query.lower().split())}"


def search_account(plan: Plan) -> BlueskyAccount | None:
    search = plan.feeds.bluesky
    if search is None:
        return None
    return search.account or plan.publishing.bluesky


@dataclass
class _Limits:
    """The last `ratelimit-*` headers seen: an exhausted budget stops polling until its reset."""

    reset_at: datetime | None = None
    seen: dict[str, str] = field(default_factory=dict)

    def hook(self, response: httpx.Response) -> None:
        remaining, reset = response.headers.get("ratelimit-remaining"), response.headers.get("ratelimit-reset")
        if remaining is not None and remaining.strip() == "0" and reset and reset.strip().isdigit():
            self.reset_at = datetime.fromtimestamp(int(reset), UTC)


def post_item(post: Any, followers: dict[str, int]) -> dict[str, Any]:
    """Mention fields of one searchPosts post view."""
    record = post.record
    rkey = post.uri.rsplit("/", 1)[-1]
    langs = getattr(record, "langs", None) or []
    return {
        "platform": "bluesky", "id": post.uri, "text": getattr(record, "text", "") or "",
        "created_at": getattr(record, "created_at", None) or post.indexed_at,
        "url": f"https://bsky.app/profile/{post.author.handle}/post/{rkey}",
        "author": post.author.handle, "author_followers": followers.get(post.author.did, 0),
        "likes": post.like_count or 0, "shares": post.repost_count or 0, "replies": post.reply_count or 0,
        "lang": langs[0] if langs else None,
    }


def _followers(client: Client, posts: list[Any]) -> dict[str, int]:
    dids = list(dict.fromkeys(post.author.did for post in posts))
    counts: dict[str, int] = {}
    for start in range(0, len(dids), 25):  # getProfiles takes at most 25 actors
        for profile in client.get_profiles(dids[start:start + 25]).profiles:
            counts[profile.did] = profile.followers_count or 0
    return counts


def poll_bluesky(sessions: sessionmaker[Session], search: BlueskySearch, account: BlueskyAccount, password: str,
                 now: datetime, plan: Plan | None = None) -> list[PollResult]:
    """One poll of every query (one sign-in); a query's failure is recorded on its cursor, the rest go on."""
    keys = [search_key(query) for query in search.queries]
    with transaction(sessions) as session:
        resumes = {key: _cursor(session, key).next_poll_at for key in keys}
    waiting = [key for key, at in resumes.items() if at is not None and at > now]
    if len(waiting) == len(keys):
        return [PollResult(key, skipped=True) for key in keys]
    limits = _Limits()
    client = Client(base_url=account.pds, request=Request(timeout=TIMEOUT, event_hooks={"response": [limits.hook]}))
    results = []
    try:
        client.login(account.handle, password)
        for query, key in zip(search.queries, keys, strict=True):
            if key in waiting or limits.reset_at is not None:
                results.append(PollResult(key, skipped=True))
                continue
            try:
                results.append(_poll_query(sessions, client, query, key, limits, now, plan))
            except RateLimitExceededError:
                raise
            except Exception as exc:  # one query's failure never costs the others
                error = f"{type(exc).__name__}: {exc}"[:2000]
                log.warning("bluesky search %s failed: %s", key, error)
                with transaction(sessions) as session:
                    cursor = _cursor(session, key)
                    cursor.polled_at, cursor.error = now, error
                results.append(PollResult(key, error=error))
    except RateLimitExceededError as exc:
        limits.reset_at = exc.reset_at or limits.reset_at
        log.warning("bluesky search: rate limited until %s", limits.reset_at)
    finally:
        client.request.close()
    if limits.reset_at is not None:  # nothing more until the reset, for every query of this account
        with transaction(sessions) as session:
            for key in keys:
                _cursor(session, key).next_poll_at = limits.reset_at
    done = {result.feed_key for result in results}
    return results + [PollResult(key, skipped=True) for key in keys if key not in done]


def _poll_query(sessions: sessionmaker[Session], client: Client, query: str, key: str, limits: _Limits,
                now: datetime, plan: Plan | None = None) -> PollResult:
    with transaction(sessions) as session:
        state = dict(_cursor(session, key).cursor)
    since, page_cursor, newest = state.get("since"), state.get("cursor"), state.get("pending_since")
    found: list[Any] = []
    finished = False
    for _ in range(MAX_PAGES):
        params: dict[str, Any] = {"q": query, "sort": "latest", "limit": PAGE}
        if page_cursor:
            params["cursor"] = page_cursor
        answer = client.app.bsky.feed.search_posts(params)
        posts = list(answer.posts)
        if newest is None and posts:
            newest = max(post.indexed_at for post in posts)
        fresh = [post for post in posts if since is None or post.indexed_at > since]
        found.extend(fresh)
        page_cursor = answer.cursor
        if len(fresh) < len(posts) or not page_cursor or not posts:
            finished = True
            break
        if limits.reset_at is not None:
            break
    followers = _followers(client, found) if found else {}
    found.sort(key=lambda post: post.indexed_at)  # oldest first, as they were posted
    mentions, skipped = _storable([post_item(post, followers) for post in found], lambda item: item, key)
    with transaction(sessions) as session:
        stored = store_mentions(session, mentions, source="bluesky")
        if plan is not None:  # crossing posts escalate as from every other source, in the same transaction
            queue_escalations(session, plan, mentions, now)
        cursor = _cursor(session, key)
        if finished:
            cursor.cursor = {"since": newest or since}
        else:
            cursor.cursor = {"since": since, "cursor": page_cursor, "pending_since": newest}
        cursor.polled_at, cursor.error = now, None
    return PollResult(key, fetched=len(mentions), accepted=stored.accepted, bad_items=tuple(skipped))


def poll_bluesky_feeds(sessions: sessionmaker[Session], plan: Plan, now: datetime) -> list[PollResult]:
    """The plan's Bluesky queries, once (nothing without `feeds.bluesky`); a failure is stored on every
    query's cursor and logged, never raised into the round of feeds."""
    search, account = plan.feeds.bluesky, search_account(plan)
    if search is None or account is None:
        return []
    keys = [search_key(query) for query in search.queries]
    password = os.environ.get(account.password_env, "").strip()
    try:
        if not password:
            raise LookupError(f"${account.password_env} is not set, so Bluesky cannot be searched")
        return poll_bluesky(sessions, search, account, password, now, plan)
    except Exception as exc:  # whatever Bluesky does, the other feeds' round goes on
        error = f"{type(exc).__name__}: {exc}"[:2000]
        log.warning("bluesky search failed: %s", error)
        with transaction(sessions) as session:
            for key in keys:
                cursor = _cursor(session, key)
                cursor.polled_at, cursor.error = now, error
        return [PollResult(key, error=error) for key in keys]
