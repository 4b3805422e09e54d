"""Publishing to Mastodon with Mastodon.py.

- `status_post(..., idempotency_key=…)` sends `Idempotency-Key`: Mastodon returns the status it already made
  for that key (kept about an hour), so a repeat of the same attempt never makes a second status.
- `ratelimit_method="throw"`: a 429 raises `MastodonRatelimitError` at once (the default, "wait", would sleep
  in a worker until the reset); the client has parsed `X-RateLimit-Reset` into `ratelimit_reset` (epoch).
- Refusals are `MastodonAPIError(message, status, reason, error)`: 401 `MastodonUnauthorizedError`, 404
  `MastodonNotFoundError` (a deleted `in_reply_to_id`), 422 plain `MastodonAPIError` ("Validation failed: Text
  character limit of 500 exceeded"). Timeouts and dropped connections are `MastodonNetworkError`; 5xx is
  `MastodonServerError`: both may have stored the status, so they are Unanswered.
- A reply needs the answered status's id *on our instance*: `search_v2(url, resolve=True)` federates it.
- The lookup after an unanswered call reads the account's latest statuses and matches the text (content
  is HTML; compared as plain text with whitespace collapsed).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlparse

from mastodon import (
    Mastodon,
    MastodonAPIError,
    MastodonNetworkError,
    MastodonNotFoundError,
    MastodonRatelimitError,
    MastodonServerError,
    MastodonUnauthorizedError,
)

from bot.listening.html_text import html_to_text
from bot.publishing.accounts import Account
from bot.publishing.platform import Answered, Posted, Refused, Unanswered

LOOKUP_STATUSES = 40
CLOCK_SKEW = timedelta(minutes=5)


def _error_text(exc: MastodonAPIError) -> str:
    """The instance's own message (`error` of its JSON), else the HTTP reason."""
    args = exc.args
    if len(args) >= 4 and args[3]:
        return str(args[3])[:300]
    if len(args) >= 3 and args[2]:
        return f"HTTP {args[1]} {args[2]}"
    return str(exc)[:300]


def _plain(text: str) -> str:
    return " ".join(text.split())


class MastodonPublisher:
    def __init__(self, account: Account, token: str, timeout: float) -> None:
        self.account = account
        self.client = Mastodon(api_base_url=account.base_url, access_token=token, request_timeout=timeout,
                               ratelimit_method="throw", version_check_mode="none", mastodon_version="4.3.0")
        self._me: Any = None

    def _account_id(self) -> str:
        if self._me is None:
            self._me = self._call(self.client.account_verify_credentials)
        return str(self._me["id"])

    def _call(self, method: Any, *args: Any, **kwargs: Any) -> Any:
        """One call, its failures as Refused (with the instance's reason) or Unanswered."""
        try:
            return method(*args, **kwargs)
        except MastodonRatelimitError:
            reset = self.client.ratelimit_reset
            until = datetime.fromtimestamp(reset, UTC) if reset else None
            raise Refused.rate_limited(f"{self.account.label} is rate-limiting this account", until) from None
        except MastodonUnauthorizedError as exc:
            raise Refused(f"{self.account.label} refused the access token in ${self.account.env}: "
                          f"{_error_text(exc)}", retryable=True) from None
        except MastodonNotFoundError as exc:
            raise Refused(f"the post being replied to is gone ({_error_text(exc)})", retryable=False) from None
        except MastodonServerError as exc:
            raise Unanswered(f"{self.account.label} failed ({_error_text(exc)})") from None
        except MastodonAPIError as exc:
            raise Refused(f"{self.account.label} refused the post: {_error_text(exc)}", retryable=False) from None
        except MastodonNetworkError as exc:
            raise Unanswered(f"{self.account.label} did not answer ({str(exc)[:200]})") from None

    def _local_id(self, answered: Answered) -> str:
        """The answered status's id on our instance (federated in by a resolving search when it is remote)."""
        if answered.url and urlparse(answered.url).netloc == urlparse(self.account.base_url).netloc:
            return answered.external_id
        if answered.url:
            found = self._call(self.client.search_v2, answered.url, resolve=True, result_type="statuses")
            statuses = found.get("statuses") or []
            if statuses:
                return str(statuses[0]["id"])
        raise Refused(f"the post being replied to could not be found from {self.account.label} (deleted?)",
                      retryable=False)

    def post(self, text: str, reply_to: Answered | None, key: str) -> Posted:
        in_reply_to = self._local_id(reply_to) if reply_to is not None else None
        status = self._call(self.client.status_post, text, in_reply_to_id=in_reply_to, idempotency_key=key,
                            visibility="public")
        return Posted(str(status["id"]), str(status.get("url") or status.get("uri")))

    def find(self, text: str, key: str, since: datetime) -> Posted | None:
        statuses = self._call(self.client.account_statuses, self._account_id(), limit=LOOKUP_STATUSES)
        wanted = _plain(text)
        for status in statuses:
            created = status.get("created_at")
            if isinstance(created, datetime) and created.astimezone(UTC) < since - CLOCK_SKEW:
                continue
            if _plain(html_to_text(str(status.get("content") or ""))) == wanted:
                return Posted(str(status["id"]), str(status.get("url") or status.get("uri")))
        return None
