"""Pollers for the plan's RSS/Atom feeds and Mastodon tag timelines; each resumes from its FeedCursor.

- RSS/Atom: a conditional GET (ETag / Last-Modified from the cursor; 304 means nothing new), parsed
  by feedparser from the bytes fetched here. External id = the item's guid/id, else its link.
- Mastodon: `GET /api/v1/timelines/tag/:tag`, public and unauthenticated. The first poll takes the
  newest page; later polls page forward with `min_id` from the cursor's `since_id` until a short page.
  `X-RateLimit-Remaining: 0` (or a 429) stops polling that feed until `X-RateLimit-Reset`.
  `search:` entries are not polled: Mastodon only full-text-searches statuses for a logged-in user
  (`/api/v2/search?type=statuses` without a token returns no statuses), and War Room holds no
  Mastodon token. Use a tag, or push such posts through POST /mentions.

Feed HTML becomes plain text (`bot.html_text`). A feed's failure is stored on its cursor and logged;
it never stops the other feeds.
"""

from __future__ import annotations

import calendar
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import feedparser
import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.html_text import html_to_text
from bot.mentions import MAX_TEXT_CHARS, NewMention, store_mentions, validate_mention
from bot.plan import MastodonFeed, Plan, RssFeed
from models import FeedCursor, transaction

log = logging.getLogger(__name__)
HTTP_TIMEOUT = httpx.Timeout(15.0, connect=5.0)
USER_AGENT = "WarRoom/0.1 (+https://github.com/; brand mention monitor)"
MASTODON_PAGE = 40
MASTODON_MAX_PAGES = 10
RATE_LIMIT_FALLBACK = timedelta(minutes=5)


@dataclass(frozen=True)
class PollResult:
    feed_key: str
    fetched: int = 0
    accepted: int = 0
    skipped: bool = False
    error: str | None = None


def rss_key(feed: RssFeed) -> str:
    return f"rss:{feed.url}"


def mastodon_key(feed: MastodonFeed) -> str:
    return f"mastodon:{feed.instance.rstrip('/')}:tag:{(feed.tag or '').lower()}"


def _cursor(session: Session, key: str) -> FeedCursor:
    cursor = session.scalars(select(FeedCursor).where(FeedCursor.feed_key == key)).first()
    if cursor is None:
        cursor = FeedCursor(feed_key=key, cursor={})
        session.add(cursor)
        session.flush()
    return cursor


def _clip(value: Any, limit: int) -> str | None:
    if not value:
        return None
    return str(value).strip()[:limit] or None


def _to_mention(item: dict[str, Any], key: str) -> NewMention | None:
    """Validate a feed item, dropping (and logging) one a feed got wrong instead of failing the poll."""
    item["text"] = (item.get("text") or "")[:MAX_TEXT_CHARS]
    mention, errors = validate_mention(item, 0)
    if mention is None:
        log.info("feed %s: skipped an item: %s", key, "; ".join(f"{e.field} {e.message}" for e in errors))
    return mention


# ---- RSS / Atom -------------------------------------------------------------------------------


def _entry_time(entry: Any, now: datetime) -> datetime:
    for name in ("published_parsed", "updated_parsed", "created_parsed"):
        parsed = entry.get(name)
        if parsed:
            return datetime.fromtimestamp(calendar.timegm(parsed), UTC)
    return now


def rss_items(content: bytes, now: datetime) -> Iterator[dict[str, Any]]:
    """Mention fields of every item of an RSS 2.0 or Atom document."""
    parsed = feedparser.parse(content)
    for entry in parsed.entries:
        external_id = entry.get("id") or entry.get("link")
        if not external_id:
            continue
        title = html_to_text(entry.get("title") or "")
        body = ""
        if entry.get("content"):
            body = html_to_text(entry.content[0].get("value") or "")
        elif entry.get("summary"):
            body = html_to_text(entry.summary)
        text = "\n".join(dict.fromkeys(part for part in (title, body) if part))  # a title twice: once
        yield {
            "platform": "rss", "id": _clip(external_id, 200), "text": text,
            "created_at": _entry_time(entry, now).isoformat(), "url": _clip(entry.get("link"), 2000),
            "author": _clip(entry.get("author"), 200), "lang": _clip(entry.get("language"), 16),
        }


def poll_rss(sessions: sessionmaker[Session], feed: RssFeed, http: httpx.Client, now: datetime) -> PollResult:
    """Fetch one RSS/Atom feed if it changed and store its new items."""
    key = rss_key(feed)
    with transaction(sessions) as session:
        state = dict(_cursor(session, key).cursor)
    headers = {}
    if state.get("etag"):
        headers["If-None-Match"] = state["etag"]
    if state.get("last_modified"):
        headers["If-Modified-Since"] = state["last_modified"]
    response = http.get(feed.url, headers=headers)
    if response.status_code == 304:
        with transaction(sessions) as session:
            cursor = _cursor(session, key)
            cursor.polled_at, cursor.error = now, None
        return PollResult(key)
    response.raise_for_status()
    mentions = [m for item in rss_items(response.content, now) if (m := _to_mention(item, key)) is not None]
    with transaction(sessions) as session:
        result = store_mentions(session, mentions, source="rss")
        cursor = _cursor(session, key)
        cursor.cursor = {"etag": response.headers.get("ETag"),
                         "last_modified": response.headers.get("Last-Modified")}
        cursor.polled_at, cursor.error = now, None
    return PollResult(key, fetched=len(mentions), accepted=result.accepted)


# ---- Mastodon ---------------------------------------------------------------------------------


def status_item(status: dict[str, Any]) -> dict[str, Any]:
    """Mention fields of one Mastodon status (its HTML content as text)."""
    account = status.get("account") or {}
    text = html_to_text(status.get("content") or "")
    warning = (status.get("spoiler_text") or "").strip()
    if warning:
        text = f"[{warning}] {text}".strip()
    return {
        "platform": "mastodon", "id": str(status.get("id") or ""), "text": text,
        "created_at": status.get("created_at"), "url": _clip(status.get("url") or status.get("uri"), 2000),
        "author": _clip(account.get("acct") or account.get("username"), 200),
        "author_followers": account.get("followers_count") or 0,
        "likes": status.get("favourites_count") or 0, "shares": status.get("reblogs_count") or 0,
        "replies": status.get("replies_count") or 0, "lang": _clip(status.get("language"), 16),
    }


def _status_id(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1


def _rate_limit_reset(response: httpx.Response, now: datetime) -> datetime | None:
    """When to try again, if this response says the rate limit is used up."""
    remaining = response.headers.get("X-RateLimit-Remaining")
    exhausted = response.status_code == 429 or (remaining is not None and remaining.strip() in ("0", "0.0"))
    if not exhausted:
        return None
    reset = response.headers.get("X-RateLimit-Reset")
    if reset:
        try:
            parsed = datetime.fromisoformat(reset.strip().replace("Z", "+00:00"))
            return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        except ValueError:
            pass
    return now + RATE_LIMIT_FALLBACK


def poll_mastodon(sessions: sessionmaker[Session], feed: MastodonFeed, http: httpx.Client,
                  now: datetime) -> PollResult:
    """Fetch the new statuses of one tag timeline and store them; honours the instance's rate limit."""
    key = mastodon_key(feed)
    if feed.tag is None:
        return PollResult(key, skipped=True, error="Mastodon search needs a user token; only tags are polled")
    with transaction(sessions) as session:
        cursor = _cursor(session, key)
        if cursor.next_poll_at is not None and cursor.next_poll_at > now:
            return PollResult(key, skipped=True)
        since_id = cursor.cursor.get("since_id")
    url = f"{feed.instance.rstrip('/')}/api/v1/timelines/tag/{feed.tag}"
    statuses: list[dict[str, Any]] = []
    next_poll_at = None
    for _ in range(MASTODON_MAX_PAGES):
        params: dict[str, Any] = {"limit": MASTODON_PAGE}
        if since_id:
            params["min_id"] = since_id  # the page just after since_id, so a burst is read in full
        response = http.get(url, params=params)
        next_poll_at = _rate_limit_reset(response, now)
        if response.status_code == 429:
            break
        response.raise_for_status()
        page = [status for status in response.json() if isinstance(status, dict)]
        statuses.extend(status for status in page if not status.get("reblog"))  # a boost is not a new post
        newest = max(page, key=lambda status: _status_id(status.get("id")), default=None)
        if newest is not None and _status_id(newest.get("id")) > _status_id(since_id):
            since_id = str(newest["id"])
        # The first poll takes only the newest page; later polls page until a short page.
        if next_poll_at is not None or len(page) < MASTODON_PAGE or not params.get("min_id"):
            break
    statuses.sort(key=lambda status: _status_id(status.get("id")))  # oldest first, as they were posted
    mentions = [m for status in statuses if (m := _to_mention(status_item(status), key)) is not None]
    with transaction(sessions) as session:
        result = store_mentions(session, mentions, source="mastodon")
        cursor = _cursor(session, key)
        cursor.cursor = {**cursor.cursor, "since_id": since_id}
        cursor.polled_at, cursor.next_poll_at, cursor.error = now, next_poll_at, None
    return PollResult(key, fetched=len(mentions), accepted=result.accepted)


# ---- all feeds ---------------------------------------------------------------------------------


def _record_error(sessions: sessionmaker[Session], key: str, now: datetime, error: str) -> None:
    with transaction(sessions) as session:
        cursor = _cursor(session, key)
        cursor.polled_at, cursor.error = now, error[:2000]


def poll_feeds(sessions: sessionmaker[Session], plan: Plan, now: datetime,
               http: httpx.Client | None = None) -> list[PollResult]:
    """Poll every feed of the plan once; a failing feed is recorded on its cursor and the rest go on."""
    owned = http is None
    client = http or httpx.Client(timeout=HTTP_TIMEOUT, follow_redirects=True,
                                  headers={"User-Agent": USER_AGENT})
    jobs: list[tuple[str, Any]] = [(rss_key(f), lambda f=f: poll_rss(sessions, f, client, now))
                                   for f in plan.feeds.rss]
    jobs += [(mastodon_key(f), lambda f=f: poll_mastodon(sessions, f, client, now))
             for f in plan.feeds.mastodon]
    results = []
    try:
        for key, poll in jobs:
            try:
                results.append(poll())
            except (httpx.HTTPError, ValueError) as exc:
                error = f"{type(exc).__name__}: {exc}"
                log.warning("feed %s failed: %s", key, error)
                _record_error(sessions, key, now, error)
                results.append(PollResult(key, error=error))
    finally:
        if owned:
            client.close()
    return results
