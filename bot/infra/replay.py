"""Refusing replayed Slack requests: the same signed request accepted twice.

Bolt's signature check refuses a request that is unsigned, wrongly signed, altered, or whose
`X-Slack-Request-Timestamp` is more than 5 minutes from now. Within those 5 minutes it accepts an
identical request again, so anyone who captured one (a logging proxy, a leaked HAR file) could
replay it. `ReplayGuard` remembers every verified signature until Bolt would refuse it as stale
anyway, and refuses a second request carrying one with 401.

Decisions:

* Slack never sends the same signature twice on purpose. Slash commands and interactions are not
  retried; Events API retries (`X-Slack-Retry-Num`) are new HTTP requests, signed again with a new
  timestamp (a retry 5 minutes later carrying the first timestamp would fail every verifier), so
  they pass this guard and are made harmless by the handlers' idempotency keys (one incident per
  open request, one decision per draft), which is the real defence across processes.
* The memory is per process, not in the database: checking it costs microseconds before the ack,
  where a database write per request would cost an ack-latency budget of 100 ms under load (and a
  SQLite write lock). A replay sent to a *different* web process of a multi-process deployment gets
  through this guard and then meets the same idempotency keys.
* It runs as a Flask `before_request` hook in front of Bolt and checks the signature itself first (an
  HMAC, microseconds), so only genuinely signed requests are remembered: forged ones cannot fill the
  memory, and Bolt refuses them with its own 401. Running in front of Bolt also lets it refuse a
  non-numeric `X-Slack-Request-Timestamp`, on which slack_sdk's verifier raises (a 500, not a 401).
* Memory is bounded (`max_entries`); under a flood the oldest entries go first.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from slack_sdk.signature import SignatureVerifier

if TYPE_CHECKING:
    from flask import Response

log = logging.getLogger(__name__)

# Bolt (slack_sdk's SignatureVerifier) accepts timestamps up to this far from now, either way.
SIGNATURE_WINDOW_SECONDS = 5 * 60
MAX_ENTRIES = 200_000
SLACK_EVENTS_PATH = "/slack/events"
GUARDED_HEADERS = ("X-Slack-Request-Timestamp", "X-Slack-Signature", "X-Slack-Retry-Num")


class ReplayGuard:
    """Remembers verified request signatures for as long as Bolt would accept them."""

    def __init__(self, signing_secret: str | None = None, *, window_seconds: int = SIGNATURE_WINDOW_SECONDS,
                 max_entries: int = MAX_ENTRIES, clock: Callable[[], float] = time.time) -> None:
        self._verifier = SignatureVerifier(signing_secret) if signing_secret else None
        self.window_seconds = window_seconds
        self.max_entries = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._seen: dict[str, float] = {}
        self._expiry: list[tuple[float, str]] = []

    def first_time(self, signature: str, timestamp: str) -> bool:
        """Record `signature`; False when it was already seen and would still be accepted."""
        try:
            sent_at = float(timestamp)
        except ValueError:
            sent_at = self._clock()
        # A timestamp up to the window in the future is accepted too, so remember it that much longer.
        expires = max(sent_at, self._clock()) + self.window_seconds + 1
        with self._lock:
            self._forget_expired()
            if signature in self._seen:
                return False
            self._seen[signature] = expires
            heapq.heappush(self._expiry, (expires, signature))
            while len(self._seen) > self.max_entries:
                _, oldest = heapq.heappop(self._expiry)
                self._seen.pop(oldest, None)
            return True

    def _forget_expired(self) -> None:
        now = self._clock()
        while self._expiry and self._expiry[0][0] < now:
            _, signature = heapq.heappop(self._expiry)
            self._seen.pop(signature, None)

    def __len__(self) -> int:
        return len(self._seen)

    def check(self, path: str, headers: Mapping[str, str], body: bytes) -> tuple[int, str] | None:
        """The refusal (status, reason) for a Slack request, or None to let it through to Bolt."""
        if path != SLACK_EVENTS_PATH or self._verifier is None:
            return None
        timestamp = headers.get("X-Slack-Request-Timestamp", "")
        signature = headers.get("X-Slack-Signature", "")
        if not timestamp.isascii() or not timestamp.isdigit():
            # slack_sdk's verifier does int(timestamp) unguarded: without this, a 500 instead of a 401.
            return 401, "malformed X-Slack-Request-Timestamp"
        if not self._verifier.is_valid(body, timestamp, signature):
            return None  # Bolt refuses it with its own 401; forged signatures are never remembered
        if not self.first_time(signature, timestamp):
            retry = headers.get("X-Slack-Retry-Num", "")
            log.warning("refused a replayed Slack request (same signature already accepted%s)",
                        f", Slack retry {retry}" if retry else "")
            return 401, "replayed request"
        return None

    def flask_hook(self) -> Response | None:
        """Flask `before_request` hook: answer 401 for a refused request, else let the route run."""
        from flask import jsonify, request

        if request.method != "POST" or request.path != SLACK_EVENTS_PATH:
            return None  # other routes read their own bodies, or none
        # bot.web's size hook runs first, so no body over 1 MiB gets here. get_data caches the body,
        # so Bolt's Flask adapter reads the same bytes afterwards.
        headers = {name: request.headers.get(name, "") for name in GUARDED_HEADERS}
        refusal = self.check(request.path, headers, request.get_data())
        if refusal is None:
            return None
        status, _reason = refusal
        response = jsonify(error="invalid request")
        response.status_code = status
        return response
