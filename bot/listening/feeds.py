"""Pollers for the plan's RSS/Atom feeds and Mastodon tag timelines; each resumes from its FeedCursor.

- RSS/Atom: a conditional GET (ETag / Last-Modified from the cursor; 304 means nothing new), parsed
  by feedparser from the bytes fetched here with the response's Content-Type (its charset); links
  are resolved against the feed's location (Content-Location, else the URL after redirects).
  External id = the item's guid/id as written, else its link, else a hash of its content (stable
  from poll to poll). The validators are saved only with the items they describe.
- Mastodon: `GET /api/v1/timelines/tag/:tag`, public and unauthenticated. The first poll takes the
  newest page; later polls page forward with `min_id` from the cursor's `since_id` until a short page.
  `X-RateLimit-Remaining: 0` (or a 429) stops polling that feed until `X-RateLimit-Reset`.
  `search:` entries use `GET /api/v2/search?type=statuses` with a user token (Mastodon searches statuses
  only for a signed-in user): the entry's `token_env`, else the `publishing.mastodon` account's token when
  it is the same instance. Without one the entry is skipped, saying so. The token goes only to the
  instance (never to a redirect's other host) and is never logged.

Every request goes through `bot.listening.feed_http` (public addresses only, every redirect hop checked,
body and inflated size capped). Feed HTML becomes plain text (`bot.listening.html_text`). An item that cannot
be stored is skipped and logged with its reason; a feed's failure, whatever it is, is stored on
its cursor and logged, and never stops the other feeds.
"""

from __future__ import annotations

import calendar
import hashlib
import io
import json
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any
from urllib.parse import urljoin

import feedparser
import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.crisis.plan import MastodonFeed, Plan, RssFeed
from bot.listening.escalations import queue_escalations
from bot.listening.feed_http import AllowedAddresses, FeedFetchError, Fetched, feed_client, fetch
from bot.listening.html_text import html_to_text
from bot.listening.mentions import MAX_TEXT_CHARS, NewMention, store_mentions, validate_mention
from models import FeedCursor, transaction

log = logging.getLogger(__name__)
USER_AGENT = "WarRoom/0.1 (+https://github.com/; brand mention monitor)"
MASTODON_PAGE = 40
MASTODON_MAX_PAGES = 10
RATE_LIMIT_FALLBACK = timedelta(minutes=5)
MAX_HTML_CHARS = 10 * MAX_TEXT_CHARS  # of an item's HTML read for its text, which is clipped anyway


@dataclass(frozen=True)
class PollResult:
    feed_key: str
    fetched: int = 0
    accepted: int = 0
    skipped: bool = False
    error: str | None = None
    bad_items: tuple[str, ...] = ()  # why each item that could not be stored was skipped


def rss_key(feed: RssFeed) -> str:
    return f"rss:{feed.url}"


def mastodon_key(feed: MastodonFeed) -> str:
    if feed.search is not None:
        return f"mastodon:{feed.instance.rstrip('/')}:search:{' '.join(feed.search.lower().split())}"
    return f"mastodon:{feed.instance.rstrip('/')}:tag:{(feed.tag or '').lower()}"


def mastodon_token_env(plan: Plan, feed: MastodonFeed) -> str | None:
    """The variable holding the token a search entry uses: its own, else the publishing account's (same instance)."""
    if feed.token_env:
        return feed.token_env
    account = plan.publishing.mastodon
    if account is not None and account.instance.rstrip("/") == feed.instance.rstrip("/"):
        return account.token_env
    return None


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


class BadItem(ValueError):
    """One feed item that cannot be stored; the rest of the feed is."""


def _to_mention(item: dict[str, Any]) -> tuple[NewMention | None, str]:
    """Validate a feed item: the mention, or None and why a feed got it wrong."""
    item["text"] = (item.get("text") or "")[:MAX_TEXT_CHARS]
    mention, errors = validate_mention(item, 0)
    return mention, "; ".join(f"{e.field} {e.message}" for e in errors)


def _storable(things: Iterable[Any], to_item: Callable[[Any], dict[str, Any]],
              key: str) -> tuple[list[NewMention], list[str]]:
    """The mentions of a feed's items, and why each item that cannot be stored was skipped (and logged)."""
    mentions, skipped = [], []
    for thing in things:
        try:
            mention, reason = _to_mention(to_item(thing))
        except BadItem as exc:
            mention, reason = None, str(exc)
        except Exception as exc:  # one bad item never costs the rest of the feed
            mention, reason = None, f"{type(exc).__name__}: {exc}"
        if mention is None:
            reason = f"item {_clip(thing.get('id') or thing.get('link'), 200)!r}: {reason}"
            log.warning("feed %s: skipped an item: %s", key, reason)
            skipped.append(reason)
        else:
            mentions.append(mention)
    return mentions, skipped


def _raise_for_status(fetched: Fetched) -> None:
    if not 200 <= fetched.status_code < 300:
        raise FeedFetchError(f"HTTP {fetched.status_code} from {fetched.url}")


# ---- RSS / Atom -------------------------------------------------------------------------------


def _entry_time(entry: Any, now: datetime) -> datetime:
    for name in ("published_parsed", "updated_parsed", "created_parsed"):
        parsed = entry.get(name)
        if parsed:
            try:
                return datetime.fromtimestamp(calendar.timegm(parsed), UTC)
            except (ValueError, OverflowError):
                # e.g. 0001-01-01T00:00:00+01:00 is year 0 in UTC
                raise BadItem(f"its date {entry.get(name.removesuffix('_parsed'))!r} is out of range") from None
    return now


def _web_url(base: str, value: Any) -> str | None:
    """`value` as an absolute http(s) URL (resolved against `base`), or None if it is no such URL."""
    link = str(value or "").strip()
    if not link:
        return None
    try:
        url = urljoin(base, link)
    except ValueError:  # e.g. an unclosed "[" in the host
        return None
    return url[:2000] if url.lower().startswith(("http://", "https://")) else None


def feed_location(fetched: Fetched) -> str:
    """Where the document says it lives (Content-Location), else the URL it was fetched from after redirects."""
    return _web_url(fetched.url, fetched.headers.get("Content-Location")) or fetched.url


def _text(detail: Any, value: Any) -> str:
    text = str(value or "")[:MAX_HTML_CHARS]
    if (detail or {}).get("type") == "text/plain":
        return " ".join(text.split())
    return html_to_text(text)


def entry_item(entry: Any, now: datetime, *, base: str, atom: bool = False) -> dict[str, Any]:
    """Mention fields of one parsed RSS/Atom entry; BadItem says why it cannot be stored."""
    title = _text(entry.get("title_detail"), entry.get("title"))
    body = ""
    if entry.get("content"):
        body = _text(entry.content[0], entry.content[0].get("value"))
    elif entry.get("summary"):
        body = _text(entry.get("summary_detail"), entry.summary)
    text = "\n".join(dict.fromkeys(part for part in (title, body) if part))  # a title twice: once
    created_at = _entry_time(entry, now)
    # Links are resolved against the feed's location. feedparser copies an Atom <id> or an RSS <guid>
    # into `link` when there is no link element: only an RSS guid left a permalink (RSS's default)
    # and written as a full URL is one ("item-42" or "tag:..." is not).
    link = entry.get("link")
    url = None
    if any(found.get("href") == link for found in entry.get("links") or []):
        url = _web_url(base, link)
    elif entry.get("guidislink") and not atom:
        url = _web_url("", link)
    external_id = entry.get("id") or url
    if not external_id:
        # Neither id nor link: the content itself names the item, the same on every poll.
        digest = hashlib.sha256("\x1f".join((title, body, entry.get("published") or entry.get("updated") or ""))
                                .encode("utf-8", "surrogatepass")).hexdigest()
        external_id = f"sha256:{digest[:40]}"
    return {
        "platform": "rss", "id": _clip(external_id, 200), "text": text, "created_at": created_at.isoformat(),
        "url": url, "author": _clip(entry.get("author"), 200), "lang": _clip(entry.get("language"), 16),
    }


def parse_feed(fetched: Fetched) -> tuple[list[Any], bool]:
    """The entries of a fetched RSS/Atom document (and whether it is Atom), read with its charset header."""
    # The Content-Type's charset decodes the bytes. The location is NOT given to feedparser: it would
    # also resolve every bare guid ("item-42" -> "https://host/feeds/item-42"), inventing a link and
    # changing the item's id whenever the feed moves. entry_item resolves links itself.
    headers = {name.lower(): fetched.headers[name] for name in ("Content-Type", "Content-Language")
               if name in fetched.headers}
    # A stream, never bytes: feedparser opens bytes that look like a path or URL.
    # No sanitising: the HTML becomes plain text here, and sanitising is most of the parse time.
    parsed = feedparser.parse(io.BytesIO(fetched.body), response_headers=headers,
                              sanitize_html=False, resolve_relative_uris=False)
    return list(parsed.entries), str(parsed.get("version", "")).startswith("atom")


def poll_rss(sessions: sessionmaker[Session], feed: RssFeed, http: httpx.Client, now: datetime,
             plan: Plan | None = None) -> PollResult:
    """Fetch one RSS/Atom feed if it changed and store its new items."""
    key = rss_key(feed)
    with transaction(sessions) as session:
        state = dict(_cursor(session, key).cursor)
    headers = {}
    if state.get("etag"):
        headers["If-None-Match"] = state["etag"]
    if state.get("last_modified"):
        headers["If-Modified-Since"] = state["last_modified"]
    fetched = fetch(http, feed.url, headers=headers)
    if fetched.status_code == 304:
        with transaction(sessions) as session:
            cursor = _cursor(session, key)
            cursor.polled_at, cursor.error = now, None
        return PollResult(key)
    _raise_for_status(fetched)
    entries, atom = parse_feed(fetched)
    base = feed_location(fetched)
    mentions, skipped = _storable(entries, lambda entry: entry_item(entry, now, base=base, atom=atom), key)
    # The validators are saved in the transaction that stores the items: if storing fails, the
    # next poll fetches the whole feed again.
    with transaction(sessions) as session:
        result = store_mentions(session, mentions, source="rss")
        if plan is not None:
            queue_escalations(session, plan, mentions, now)
        cursor = _cursor(session, key)
        cursor.cursor = {"etag": fetched.headers.get("ETag"),
                         "last_modified": fetched.headers.get("Last-Modified")}
        cursor.polled_at, cursor.error = now, None
    return PollResult(key, fetched=len(mentions), accepted=result.accepted, bad_items=tuple(skipped))


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


def _rate_limit_reset(response: Fetched, now: datetime) -> datetime | None:
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
                  now: datetime, token_env: str | None = None, plan: Plan | None = None) -> PollResult:
    """Fetch the new statuses of one tag timeline (or search, with a token) and store them; honours the
    instance's rate limit."""
    key = mastodon_key(feed)
    headers: dict[str, str] | None = None
    if feed.search is not None:
        token = os.environ.get(token_env or "", "").strip() if token_env else ""
        if not token:
            why = f"${token_env} is not set" if token_env else "no token_env is given for it"
            return PollResult(key, skipped=True, error=f"Mastodon search needs a user token and {why}")
        headers = {"Authorization": f"Bearer {token}"}
    with transaction(sessions) as session:
        cursor = _cursor(session, key)
        if cursor.next_poll_at is not None and cursor.next_poll_at > now:
            return PollResult(key, skipped=True)
        since_id = cursor.cursor.get("since_id")
    base = feed.instance.rstrip('/')
    url = f"{base}/api/v2/search" if feed.search is not None else f"{base}/api/v1/timelines/tag/{feed.tag}"
    statuses: list[dict[str, Any]] = []
    next_poll_at = None
    for _ in range(MASTODON_MAX_PAGES):
        params: dict[str, Any] = {"limit": MASTODON_PAGE}
        if feed.search is not None:
            params.update(q=feed.search, type="statuses", resolve="false")
        if since_id:
            params["min_id"] = since_id  # the page just after since_id, so a burst is read in full
        response = fetch(http, url, params=params, headers=headers)
        next_poll_at = _rate_limit_reset(response, now)
        if response.status_code == 429:
            break
        _raise_for_status(response)
        answer = json.loads(response.body)
        if feed.search is not None and isinstance(answer, dict):
            answer = answer.get("statuses")
        if not isinstance(answer, list):
            raise FeedFetchError(f"{response.url} did not answer a list of statuses")
        page = [status for status in answer if isinstance(status, dict)]
        statuses.extend(status for status in page if not status.get("reblog"))  # a boost is not a new post
        newest = max(page, key=lambda status: _status_id(status.get("id")), default=None)
        if newest is not None and _status_id(newest.get("id")) > _status_id(since_id):
            since_id = str(newest["id"])
        # The first poll takes only the newest page; later polls page until a short page.
        if next_poll_at is not None or len(page) < MASTODON_PAGE or not params.get("min_id"):
            break
    statuses.sort(key=lambda status: _status_id(status.get("id")))  # oldest first, as they were posted
    mentions, skipped = _storable(statuses, status_item, key)
    with transaction(sessions) as session:
        result = store_mentions(session, mentions, source="mastodon")
        if plan is not None:
            queue_escalations(session, plan, mentions, now)
        cursor = _cursor(session, key)
        cursor.cursor = {**cursor.cursor, "since_id": since_id}
        cursor.polled_at, cursor.next_poll_at, cursor.error = now, next_poll_at, None
    return PollResult(key, fetched=len(mentions), accepted=result.accepted, bad_items=tuple(skipped))


# ---- all feeds ---------------------------------------------------------------------------------


def _record_error(sessions: sessionmaker[Session], key: str, now: datetime, error: str) -> None:
    with transaction(sessions) as session:
        cursor = _cursor(session, key)
        cursor.polled_at, cursor.error = now, error[:2000]


def poll_feeds(sessions: sessionmaker[Session], plan: Plan, now: datetime, *,
               allow: AllowedAddresses = frozenset()) -> list[PollResult]:
    """Poll every feed of the plan once; a failing feed is recorded on its cursor and the rest go on.

    `allow`: `(ip, port)` pairs that may be fetched although not public (WARROOM_FEED_ALLOW_HOSTS).
    """
    with feed_client(allow, user_agent=USER_AGENT) as client:
        jobs: list[tuple[str, Callable[[], PollResult]]] = [
            (rss_key(f), partial(poll_rss, sessions, f, client, now, plan)) for f in plan.feeds.rss]
        jobs += [(mastodon_key(f), partial(poll_mastodon, sessions, f, client, now, mastodon_token_env(plan, f), plan))
                 for f in plan.feeds.mastodon]
        return [_poll_one(sessions, key, poll, now) for key, poll in jobs]


def _poll_one(sessions: sessionmaker[Session], key: str, poll: Callable[[], PollResult],
              now: datetime) -> PollResult:
    try:
        return poll()
    except Exception as exc:  # whatever one feed does, the round goes on
        error = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, FeedFetchError | httpx.HTTPError | ValueError):
            log.warning("feed %s failed: %s", key, error)
        else:
            log.exception("feed %s failed unexpectedly", key)
        try:
            _record_error(sessions, key, now, error)
        except Exception:
            log.exception("feed %s: its failure could not be recorded", key)
        return PollResult(key, error=error)
