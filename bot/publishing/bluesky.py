"""Publishing to Bluesky with the atproto SDK.

- The post is created with `app.bsky.feed.post.create(repo, record, rkey=key)`: the record key is a TID War
  Room chose and recorded *before* the call, so "did it get posted?" has an exact answer
  (`com.atproto.repo.getRecord` for that key), and a second create under the same key is refused by the PDS.
- Facets (what makes links and @mentions work: Bluesky does not parse the text) are computed here over
  UTF-8 byte offsets; a @handle that does not resolve stays plain text.
- A reply carries strong refs (uri + cid) to its parent and to the thread's root, read with
  `app.bsky.feed.getPosts`; a parent the AppView no longer has is a deleted parent.
- Refusals are `RequestErrorBase` subclasses with the XRPC error: `UnauthorizedError` (401/403),
  `BadRequestError` (400: `InvalidRequest` over 300 graphemes, `ExpiredToken`), `RateLimitExceededError`
  (429, `reset_at` from `ratelimit-reset`). `InvokeTimeoutError`/`NetworkError` and httpx transport errors
  (a dropped connection is `httpx.RemoteProtocolError`, which the SDK re-raises as is) are Unanswered.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx
from atproto import Client, models
from atproto_client.exceptions import (
    BadRequestError,
    NetworkError,
    RateLimitExceededError,
    RequestErrorBase,
    UnauthorizedError,
)
from atproto_client.models.common import XrpcError
from atproto_client.request import Request

from bot.publishing.accounts import Account
from bot.publishing.platform import Answered, Posted, Refused, Unanswered

COLLECTION = "app.bsky.feed.post"
_TID_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"
_URL = re.compile(r"(?<![\w@.])(https?://[^\s<>\"]+|(?:[a-z0-9-]+\.)+[a-z]{2,}(?:/[^\s<>\"]*)?)", re.IGNORECASE)
_MENTION = re.compile(r"(?<![\w@])@((?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,})", re.IGNORECASE)
_TRAILING = ".,;:!?)]}'\""
_BSKY_URL = re.compile(r"^https://bsky\.app/profile/([^/]+)/post/([a-z0-9]+)$")


def new_tid(now: datetime) -> str:
    """A record key in the TID format: microseconds since the epoch and a random clock id, base32-sortable."""
    value = (int(now.timestamp() * 1_000_000) << 10) | random.getrandbits(10)
    return "".join(_TID_ALPHABET[(value >> shift) & 31] for shift in range(60, -1, -5))


def facets_for(text: str, resolve: Callable[[str], str | None]) -> list[models.AppBskyRichtextFacet.Main]:
    """Link and mention facets for `text` with UTF-8 byte offsets; `resolve(handle)` gives a DID or None."""
    facets: list[models.AppBskyRichtextFacet.Main] = []

    def byte_slice(start: int, end: int) -> models.AppBskyRichtextFacet.ByteSlice:
        return models.AppBskyRichtextFacet.ByteSlice(byte_start=len(text[:start].encode()),
                                                     byte_end=len(text[:end].encode()))

    taken: list[tuple[int, int]] = []
    for match in _MENTION.finditer(text):
        did = resolve(match.group(1).lower())
        if did:
            facets.append(models.AppBskyRichtextFacet.Main(
                index=byte_slice(match.start(), match.end()), features=[models.AppBskyRichtextFacet.Mention(did=did)]))
            taken.append((match.start(), match.end()))
    for match in _URL.finditer(text):
        start, link = match.start(), match.group(1).rstrip(_TRAILING)
        end = start + len(link)
        if any(a < end and start < b for a, b in taken) or "." not in link:
            continue
        uri = link if re.match(r"https?://", link, re.IGNORECASE) else f"https://{link}"
        facets.append(models.AppBskyRichtextFacet.Main(
            index=byte_slice(start, end), features=[models.AppBskyRichtextFacet.Link(uri=uri)]))
    return sorted(facets, key=lambda facet: facet.index.byte_start)


def _xrpc(exc: RequestErrorBase) -> str:
    content = exc.response.content if exc.response is not None else None
    if isinstance(content, XrpcError):
        return f"{content.error}: {content.message}" if content.message else str(content.error)
    return str(exc)[:300] or type(exc).__name__


class BlueskyPublisher:
    def __init__(self, account: Account, password: str, timeout: float) -> None:
        self.account = account
        self.client = Client(base_url=account.base_url, request=Request(timeout=timeout))
        self._password = password
        self._did: str | None = None

    def _call(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except RateLimitExceededError as exc:
            raise Refused.rate_limited(f"Bluesky is rate-limiting {self.account.label}", exc.reset_at,
                                       f" ({_xrpc(exc)})") from None
        except UnauthorizedError as exc:
            raise Refused(f"Bluesky refused the app password in ${self.account.env} for {self.account.label}: "
                          f"{_xrpc(exc)}", retryable=True) from None
        except BadRequestError as exc:
            reason = _xrpc(exc)
            if "Record already exists" in reason:
                raise Unanswered("the post was already created under this attempt's key") from None
            expired = "ExpiredToken" in reason
            raise Refused(f"Bluesky refused the post: {reason}", retryable=expired) from None
        except (NetworkError, httpx.TransportError) as exc:
            raise Unanswered(f"Bluesky did not answer ({type(exc).__name__})") from None
        except RequestErrorBase as exc:  # 5xx and the rest: the post may exist
            raise Unanswered(f"Bluesky failed ({_xrpc(exc)})") from None

    def _repo(self) -> str:
        if self._did is None:
            assert self.account.handle is not None
            self._call(self.client.login, self.account.handle, self._password)
            me = self.client.me
            self._did = me.did if me is not None else None
            if self._did is None:
                raise Refused("Bluesky did not say which account the app password belongs to", retryable=True)
        return self._did

    def _resolve(self, handle: str) -> str | None:
        try:
            return str(self.client.resolve_handle(handle).did)
        except Exception:  # an unknown handle stays plain text
            return None

    def _reply_ref(self, answered: Answered) -> models.AppBskyFeedPost.ReplyRef:
        uri = answered.external_id if answered.external_id.startswith("at://") else None
        matched = _BSKY_URL.match(answered.url or "")
        if uri is None and matched:
            did = matched.group(1) if matched.group(1).startswith("did:") else self._resolve(matched.group(1))
            uri = f"at://{did}/{COLLECTION}/{matched.group(2)}" if did else None
        if uri is None:
            raise Refused("the post being replied to has no Bluesky address War Room can reply to", retryable=False)
        posts = self._call(self.client.get_posts, [uri]).posts
        if not posts:
            raise Refused("the post being replied to is gone (deleted, or hidden from this account)", retryable=False)
        parent = models.ComAtprotoRepoStrongRef.Main(uri=posts[0].uri, cid=posts[0].cid)
        thread = getattr(posts[0].record, "reply", None)
        root = thread.root if thread is not None else parent
        return models.AppBskyFeedPost.ReplyRef(parent=parent, root=root)

    def _posted(self, uri: str) -> Posted:
        rkey = uri.rsplit("/", 1)[-1]
        return Posted(uri, f"https://bsky.app/profile/{self.account.handle}/post/{rkey}")

    def post(self, text: str, reply_to: Answered | None, key: str) -> Posted:
        repo = self._repo()
        reply = self._reply_ref(reply_to) if reply_to is not None else None
        record = models.AppBskyFeedPost.Record(
            created_at=self.client.get_current_time_iso(), text=text, reply=reply,
            facets=facets_for(text, self._resolve) or None, langs=["en"],
        )
        created = self._call(self.client.app.bsky.feed.post.create, repo, record, rkey=key)
        return self._posted(str(created.uri))

    def find(self, text: str, key: str, since: datetime) -> Posted | None:
        """The record this attempt created: exact, by the key it was created under."""
        repo = self._repo()
        try:
            found = self._call(self.client.com.atproto.repo.get_record,
                               {"repo": repo, "collection": COLLECTION, "rkey": key})
        except Refused as exc:
            if "RecordNotFound" in exc.reason:
                return None
            raise
        return self._posted(str(found.uri))
