"""A local Mastodon REST API for tests: ``FakeMastodon``, driven through the real Mastodon.py client.

    with FakeMastodon() as server:
        token = server.add_account("acmeair", token="tok")
        client = Mastodon(api_base_url=server.base_url, access_token=token, ratelimit_method="throw")
        client.status_post("hello", idempotency_key="k1")

Served (the shapes Mastodon 4.x answers, as far as War Room reads them):
* ``GET /api/v1/accounts/verify_credentials``: the token's account, else 401 ``{"error": "The access token
  is invalid"}``.
* ``POST /api/v1/statuses`` (form or JSON): ``Idempotency-Key`` per token returns the status already made
  with that key; over ``char_limit`` → 422 ``Validation failed: Text character limit of 500 exceeded``; an
  ``in_reply_to_id`` that is unknown or deleted → 404 ``Record not found``.
* ``GET /api/v1/accounts/:id/statuses`` (newest first, ``limit``), ``GET /api/v1/statuses/:id``,
  ``DELETE /api/v1/statuses/:id``.
* ``GET /api/v1/timelines/tag/:tag`` (public) and ``GET /api/v2/search`` (``type=statuses`` only with a
  token, as real Mastodon; ``resolve=true`` with a URL finds that status).
* ``GET /api/v1/instance``.
Every request is recorded in ``server.calls`` (method, path, query, form, headers lower-cased).

Faults, each for the next matching request (``server.fail_next(kind, times=1)``):
* ``rate_limit``: 429 ``Too many requests`` with ``X-RateLimit-Limit/Remaining/Reset`` (reset ISO 8601).
* ``unauthorized``: 401. ``server_error``: 500.
* ``drop_after_store``: the status is stored, then the connection is closed without an answer.
* ``slow_after_store``: the status is stored, then the answer waits ``server.slow_seconds``.
"""

from __future__ import annotations

import html
import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse


@dataclass
class Account:
    id: str
    username: str
    token: str
    followers: int = 120


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, list[str]]
    form: dict[str, Any]
    headers: dict[str, str]


@dataclass
class FakeMastodon:
    char_limit: int = 500
    slow_seconds: float = 3.0
    accounts: dict[str, Account] = field(default_factory=dict)  # by token
    statuses: dict[str, dict[str, Any]] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)
    calls: list[Call] = field(default_factory=list)
    faults: list[str] = field(default_factory=list)
    idempotency: dict[tuple[str, str], str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._ids = itertools.count(110_000_000_000_000_001)
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # ---- set-up ----------------------------------------------------------------------------------

    def add_account(self, username: str, token: str) -> str:
        self.accounts[token] = Account(str(next(self._ids)), username, token)
        return token

    def add_status(self, text: str, *, username: str = "someone", tags: tuple[str, ...] = (),
                   followers: int = 50, favourites: int = 0) -> dict[str, Any]:
        """A status by someone else (what a feed would see, or what a reply answers)."""
        author = Account(str(next(self._ids)), username, "", followers)
        return self._store(author, text, None, tags=tags, favourites=favourites)

    def delete_status(self, status_id: str) -> None:
        self.deleted.add(status_id)

    def fail_next(self, kind: str, times: int = 1) -> None:
        self.faults.extend([kind] * times)

    def posts_by(self, username: str) -> list[dict[str, Any]]:
        return [s for s in self.statuses.values()
                if s["account"]["username"] == username and s["id"] not in self.deleted]

    def calls_to(self, method: str, path: str) -> list[Call]:
        return [c for c in self.calls if c.method == method and c.path == path]

    # ---- the server ------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> FakeMastodon:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    # ---- behaviour -------------------------------------------------------------------------------

    def _store(self, account: Account, text: str, reply_to: str | None, *, tags: tuple[str, ...] = (),
               favourites: int = 0) -> dict[str, Any]:
        status_id = str(next(self._ids))
        paragraphs = "".join(f"<p>{html.escape(p).replace(chr(10), '<br />')}</p>" for p in text.split("\n\n"))
        url = f"{self.base_url}/@{account.username}/{status_id}"
        status = {
            "id": status_id, "uri": url, "url": url, "created_at": datetime.now(UTC).isoformat(),
            "content": paragraphs, "in_reply_to_id": reply_to, "visibility": "public", "language": "en",
            "spoiler_text": "", "reblog": None, "favourites_count": favourites, "reblogs_count": 0,
            "replies_count": 0, "tags": [{"name": t} for t in tags],
            "account": {"id": account.id, "username": account.username, "acct": account.username,
                        "followers_count": account.followers, "url": f"{self.base_url}/@{account.username}"},
        }
        self.statuses[status_id] = status
        return status

    def _fault(self, *kinds: str) -> str | None:
        with self._lock:
            for i, kind in enumerate(self.faults):
                if kind in kinds:
                    return self.faults.pop(i)
        return None


def _handler(server: FakeMastodon) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            try:
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up waiting (a timeout fault)
                self.close_connection = True

        def _account(self) -> Account | None:
            auth = self.headers.get("Authorization", "")
            return server.accounts.get(auth.removeprefix("Bearer ").strip()) if auth.startswith("Bearer ") else None

        def _handle(self, method: str) -> None:
            parsed = urlparse(self.path)
            query = parse_qs(parsed.query)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            form: dict[str, Any] = {}
            if raw:
                if "json" in (self.headers.get("Content-Type") or ""):
                    form = json.loads(raw)
                else:
                    form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
            server.calls.append(Call(method, parsed.path, query, form, {k.lower(): v for k, v in self.headers.items()}))
            fault = server._fault("rate_limit", "unauthorized", "server_error")
            if fault == "rate_limit":
                reset = (datetime.now(UTC) + timedelta(minutes=5)).replace(microsecond=0)
                self._send(429, {"error": "Too many requests"}, {
                    "X-RateLimit-Limit": "300", "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": reset.isoformat().replace("+00:00", "Z")})
                return
            if fault == "unauthorized":
                self._send(401, {"error": "The access token is invalid"})
                return
            if fault == "server_error":
                self._send(500, {"error": "We're sorry, but something went wrong on our end."})
                return
            self._route(method, parsed.path, query, form)

        def _route(self, method: str, path: str, query: dict[str, list[str]], form: dict[str, Any]) -> None:
            account = self._account()
            parts = path.strip("/").split("/")
            if path == "/api/v1/instance":
                self._send(200, {"uri": "fake.example", "version": "4.3.0",
                                 "configuration": {"statuses": {"max_characters": server.char_limit}}})
                return
            if path.startswith("/api/v1/timelines/tag/") and method == "GET":
                tag = parts[-1].lower()
                found = [s for s in server.statuses.values() if s["id"] not in server.deleted
                         and tag in (t["name"].lower() for t in s["tags"])]
                self._send(200, _page(found, query))
                return
            if account is None:
                if path == "/api/v2/search":
                    self._send(200, {"accounts": [], "statuses": [], "hashtags": []})
                    return
                self._send(401, {"error": "The access token is invalid"})
                return
            if path == "/api/v1/accounts/verify_credentials":
                self._send(200, {"id": account.id, "username": account.username, "acct": account.username,
                                 "followers_count": account.followers})
                return
            if path == "/api/v1/statuses" and method == "POST":
                self._post_status(account, form)
                return
            if len(parts) == 5 and parts[:3] == ["api", "v1", "accounts"] and parts[4] == "statuses":
                mine = [s for s in server.statuses.values() if s["account"]["id"] == parts[3]
                        and s["id"] not in server.deleted]
                self._send(200, _page(mine, query))
                return
            if len(parts) == 4 and parts[:3] == ["api", "v1", "statuses"]:
                status = server.statuses.get(parts[3])
                if status is None or parts[3] in server.deleted:
                    self._send(404, {"error": "Record not found"})
                    return
                if method == "DELETE":
                    server.deleted.add(parts[3])
                self._send(200, status)
                return
            if path == "/api/v2/search":
                self._search(query)
                return
            self._send(404, {"error": "Record not found"})

        def _search(self, query: dict[str, list[str]]) -> None:
            q = (query.get("q") or [""])[0]
            kind = (query.get("type") or [""])[0]
            live = [s for s in server.statuses.values() if s["id"] not in server.deleted]
            if q.startswith("http"):
                found = [s for s in live if s["url"] == q]
            else:
                words = q.lower().split()
                found = [s for s in live if all(w in html.unescape(s["content"]).lower() for w in words)]
            statuses = _page(found, query) if kind in ("", "statuses") else []
            self._send(200, {"accounts": [], "statuses": statuses, "hashtags": []})

        def _post_status(self, account: Account, form: dict[str, Any]) -> None:
            text = str(form.get("status") or "")
            key = self.headers.get("Idempotency-Key")
            with server._lock:
                if key and (account.token, key) in server.idempotency:
                    self._send(200, server.statuses[server.idempotency[(account.token, key)]])
                    return
                if not text.strip():
                    self._send(422, {"error": "Validation failed: Text can't be blank"})
                    return
                if len(text) > server.char_limit:
                    self._send(422, {"error": f"Validation failed: Text character limit of {server.char_limit} "
                                              "exceeded"})
                    return
                reply_to = form.get("in_reply_to_id")
                if reply_to and (reply_to not in server.statuses or reply_to in server.deleted):
                    self._send(404, {"error": "Record not found"})
                    return
                status = server._store(account, text, str(reply_to) if reply_to else None)
                if key:
                    server.idempotency[(account.token, key)] = status["id"]
            fault = server._fault("drop_after_store", "slow_after_store")
            if fault == "drop_after_store":
                self.close_connection = True
                self.connection.close()
                return
            if fault == "slow_after_store":
                time.sleep(server.slow_seconds)
            self._send(200, status)

        def do_GET(self) -> None:
            self._handle("GET")

        def do_POST(self) -> None:
            self._handle("POST")

        def do_DELETE(self) -> None:
            self._handle("DELETE")

    return Handler


def _page(statuses: list[dict[str, Any]], query: dict[str, list[str]]) -> list[dict[str, Any]]:
    """Newest first; `min_id` gives the statuses just after it, `since_id`/`max_id` bound it; `limit` (≤40)."""
    ordered = sorted(statuses, key=lambda s: int(s["id"]), reverse=True)
    limit = min(int((query.get("limit") or ["20"])[0]), 40)
    if query.get("since_id"):
        ordered = [s for s in ordered if int(s["id"]) > int(query["since_id"][0])]
    if query.get("max_id"):
        ordered = [s for s in ordered if int(s["id"]) < int(query["max_id"][0])]
    if query.get("min_id"):
        newer = [s for s in reversed(ordered) if int(s["id"]) > int(query["min_id"][0])][:limit]
        return list(reversed(newer))
    return ordered[:limit]
