"""A local Bluesky PDS + AppView (XRPC) for tests: ``FakeBluesky``, driven through the real atproto SDK.

    with FakeBluesky() as server:
        server.add_account("acme.bsky.social", "app-pass-word")
        client = Client(base_url=server.base_url + "/xrpc")
        client.login("acme.bsky.social", "app-pass-word")
        client.send_post("hello")

Served (the shapes bsky.social answers; errors are ``{"error": Name, "message": …}``):
* ``com.atproto.server.createSession`` (401 ``AuthenticationRequired`` "Invalid identifier or password"),
  ``app.bsky.actor.getProfile`` / ``getProfiles``, ``com.atproto.identity.resolveHandle``.
* ``com.atproto.repo.createRecord`` for ``app.bsky.feed.post``: over 300 graphemes → 400 ``InvalidRequest``
  "Invalid app.bsky.feed.post record: Record/text must not be longer than 300 graphemes"; a given ``rkey``
  that exists → 400 ``InvalidRequest`` "Record already exists". ``com.atproto.repo.getRecord`` (400
  ``RecordNotFound``), ``com.atproto.repo.listRecords``, ``app.bsky.feed.getAuthorFeed``,
  ``app.bsky.feed.getPosts`` (a deleted post is simply absent, as on the AppView).
* ``app.bsky.feed.searchPosts`` (``q``, ``limit``, ``cursor``, ``sort=latest``): newest first, the cursor an
  offset string, absent on the last page. Every answer carries ``ratelimit-*`` headers.
Every request is recorded in ``server.calls`` (method, nsid, params, body, headers lower-cased).

Faults (``server.fail_next(kind, times=1, nsid=None)``): ``rate_limit`` (429 ``RateLimitExceeded`` with
``ratelimit-limit/remaining/reset/policy``), ``expired`` (400 ``ExpiredToken``), ``unauthorized`` (401),
``server_error`` (500), ``drop_after_store`` / ``slow_after_store`` (createRecord stores the post, then
closes the connection / answers after ``server.slow_seconds``).
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

GRAPHEME_LIMIT = 300


@dataclass
class Account:
    did: str
    handle: str
    password: str
    followers: int = 300


@dataclass
class Call:
    method: str
    nsid: str
    params: dict[str, list[str]]
    body: dict[str, Any]
    headers: dict[str, str]


@dataclass
class FakeBluesky:
    slow_seconds: float = 3.0
    rate_limit: int = 3000
    accounts: dict[str, Account] = field(default_factory=dict)  # by handle
    records: dict[str, dict[str, Any]] = field(default_factory=dict)  # at-uri → {uri, cid, value, author, counts}
    deleted: set[str] = field(default_factory=set)
    calls: list[Call] = field(default_factory=list)
    faults: list[tuple[str, str | None]] = field(default_factory=list)
    sessions: dict[str, str] = field(default_factory=dict)  # access jwt → did

    def __post_init__(self) -> None:
        self._n = itertools.count(1)
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._tid = 3_000_000_000_000_000

    def add_account(self, handle: str, password: str, followers: int = 300) -> Account:
        account = Account(f"did:plc:{hashlib.sha256(handle.encode()).hexdigest()[:24]}", handle, password, followers)
        self.accounts[handle] = account
        return account

    def add_post(self, handle: str, text: str, *, likes: int = 0, reposts: int = 0, replies: int = 0,
                 followers: int = 40, reply_to: dict[str, Any] | None = None) -> dict[str, Any]:
        """A post by someone (created if unknown), as the AppView would list it."""
        account = self.accounts.get(handle) or self.add_account(handle, "-", followers)
        value = {"$type": "app.bsky.feed.post", "text": text, "createdAt": _now()}
        if reply_to:
            value["reply"] = reply_to
        return self._store(account, value, None, likes=likes, reposts=reposts, replies=replies)

    def delete(self, uri: str) -> None:
        self.deleted.add(uri)

    def fail_next(self, kind: str, times: int = 1, nsid: str | None = None) -> None:
        self.faults.extend([(kind, nsid)] * times)

    def posts_by(self, handle: str) -> list[dict[str, Any]]:
        did = self.accounts[handle].did
        return [r for uri, r in self.records.items() if r["author"] == did and uri not in self.deleted]

    def calls_to(self, nsid: str) -> list[Call]:
        return [c for c in self.calls if c.nsid == nsid]

    @property
    def base_url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> FakeBluesky:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    # ---- behaviour -------------------------------------------------------------------------------

    def _next_tid(self) -> str:
        self._tid += 1
        alphabet = "234567abcdefghijklmnopqrstuvwxyz"
        n, out = self._tid, ""
        for _ in range(13):
            out = alphabet[n & 31] + out
            n >>= 5
        return out

    def _store(self, account: Account, value: dict[str, Any], rkey: str | None, **counts: int) -> dict[str, Any]:
        rkey = rkey or self._next_tid()
        uri = f"at://{account.did}/app.bsky.feed.post/{rkey}"
        cid = "bafyrei" + hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:45]
        record = {"uri": uri, "cid": cid, "value": value, "author": account.did, "handle": account.handle,
                  "followers": account.followers, "indexedAt": _now(), **counts}
        self.records[uri] = record
        return record

    def _fault(self, nsid: str, *kinds: str) -> str | None:
        with self._lock:
            for i, (kind, only) in enumerate(self.faults):
                if kind in kinds and (only is None or only == nsid):
                    del self.faults[i]
                    return kind
        return None

    def post_view(self, record: dict[str, Any]) -> dict[str, Any]:
        return {
            "uri": record["uri"], "cid": record["cid"], "record": record["value"], "indexedAt": record["indexedAt"],
            "author": {"did": record["author"], "handle": record["handle"], "displayName": record["handle"]},
            "likeCount": record.get("likes", 0), "repostCount": record.get("reposts", 0),
            "replyCount": record.get("replies", 0), "quoteCount": 0,
        }


def _jwt(did: str, scope: str, n: int) -> str:
    """A token shaped like the PDS's (header.payload.signature, base64url); the SDK reads its `exp`."""
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    now = int(time.time())
    payload = {"scope": scope, "sub": did, "iat": now, "exp": now + 7200, "jti": str(n), "aud": "did:web:fake.pds"}
    return f"{part({'typ': 'at+jwt', 'alg': 'ES256K'})}.{part(payload)}.c2lnbmF0dXJl"


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _handler(server: FakeBluesky) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            reset = int(time.time()) + 300
            limits = {"ratelimit-limit": str(server.rate_limit), "ratelimit-remaining": str(server.rate_limit - 1),
                      "ratelimit-reset": str(reset), "ratelimit-policy": f"{server.rate_limit};w=300"}
            for name, value in {**limits, **(headers or {})}.items():
                self.send_header(name, value)
            self.end_headers()
            try:
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up waiting (a timeout fault)
                self.close_connection = True

        def _error(self, status: int, name: str, message: str, headers: dict[str, str] | None = None) -> None:
            self._send(status, {"error": name, "message": message}, headers)

        def _did(self) -> str | None:
            auth = self.headers.get("Authorization", "")
            return server.sessions.get(auth.removeprefix("Bearer ").strip())

        def _handle(self, method: str) -> None:
            parsed = urlparse(self.path)
            nsid = parsed.path.removeprefix("/xrpc/")
            params = parse_qs(parsed.query)
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else {}
            server.calls.append(Call(method, nsid, params, body, {k.lower(): v for k, v in self.headers.items()}))
            fault = server._fault(nsid, "rate_limit", "expired", "unauthorized", "server_error")
            if fault == "rate_limit":
                reset = int(time.time()) + 600
                self._error(429, "RateLimitExceeded", "Rate Limit Exceeded", {
                    "ratelimit-limit": "100", "ratelimit-remaining": "0", "ratelimit-reset": str(reset),
                    "ratelimit-policy": "100;w=300"})
                return
            if fault == "expired":
                self._error(400, "ExpiredToken", "Token has expired")
                return
            if fault == "unauthorized":
                self._error(401, "AuthenticationRequired", "Invalid identifier or password")
                return
            if fault == "server_error":
                self._error(500, "InternalServerError", "Internal Server Error")
                return
            self._route(nsid, params, body)

        def _route(self, nsid: str, params: dict[str, list[str]], body: dict[str, Any]) -> None:
            one = {k: v[0] for k, v in params.items()}
            if nsid == "com.atproto.server.createSession":
                account = server.accounts.get(str(body.get("identifier", "")).lstrip("@"))
                if account is None or account.password != body.get("password") or account.password == "-":
                    self._error(401, "AuthenticationRequired", "Invalid identifier or password")
                    return
                access = _jwt(account.did, "com.atproto.appPass", next(server._n))
                server.sessions[access] = account.did
                refresh = _jwt(account.did, "com.atproto.refresh", next(server._n))
                self._send(200, {"accessJwt": access, "refreshJwt": refresh, "handle": account.handle,
                                 "did": account.did, "active": True})
                return
            if nsid == "com.atproto.identity.resolveHandle":
                account = server.accounts.get(one.get("handle", ""))
                if account is None:
                    self._error(400, "InvalidRequest", "Unable to resolve handle")
                    return
                self._send(200, {"did": account.did})
                return
            did = self._did()
            if did is None:
                self._error(401, "AuthenticationRequired", "Authentication Required")
                return
            if nsid == "app.bsky.actor.getProfile":
                actor = one.get("actor", "")
                account = next((a for a in server.accounts.values() if actor in (a.did, a.handle)), None)
                if account is None:
                    self._error(400, "InvalidRequest", "Profile not found")
                    return
                self._send(200, {"did": account.did, "handle": account.handle, "followersCount": account.followers})
                return
            if nsid == "app.bsky.actor.getProfiles":
                wanted = params.get("actors", [])[:25]
                profiles = [{"did": a.did, "handle": a.handle, "followersCount": a.followers}
                            for a in server.accounts.values() if a.did in wanted or a.handle in wanted]
                self._send(200, {"profiles": profiles})
                return
            if nsid == "com.atproto.repo.createRecord":
                self._create(did, body)
                return
            if nsid == "com.atproto.repo.getRecord":
                repo = one.get("repo", "")
                account = next((a for a in server.accounts.values() if repo in (a.did, a.handle)), None)
                uri = f"at://{account.did if account else repo}/{one.get('collection')}/{one.get('rkey')}"
                record = server.records.get(uri)
                if record is None or uri in server.deleted:
                    self._error(400, "RecordNotFound", f"Could not locate record: {uri}")
                    return
                self._send(200, {"uri": uri, "cid": record["cid"], "value": record["value"]})
                return
            if nsid in ("com.atproto.repo.listRecords", "app.bsky.feed.getAuthorFeed"):
                actor = one.get("repo") or one.get("actor") or ""
                account = next((a for a in server.accounts.values() if actor in (a.did, a.handle)), None)
                mine = [r for u, r in server.records.items() if account and r["author"] == account.did
                        and u not in server.deleted]
                mine.sort(key=lambda r: r["indexedAt"], reverse=True)
                mine = mine[: int(one.get("limit", "50"))]
                if nsid == "com.atproto.repo.listRecords":
                    listed = [{"uri": r["uri"], "cid": r["cid"], "value": r["value"]} for r in mine]
                    self._send(200, {"records": listed})
                else:
                    self._send(200, {"feed": [{"post": server.post_view(r)} for r in mine]})
                return
            if nsid == "app.bsky.feed.getPosts":
                uris = params.get("uris", [])
                found = [server.post_view(server.records[u]) for u in uris
                         if u in server.records and u not in server.deleted]
                self._send(200, {"posts": found})
                return
            if nsid == "app.bsky.feed.searchPosts":
                self._search(one)
                return
            self._error(501, "MethodNotImplemented", "Method Not Implemented")

        def _search(self, one: dict[str, str]) -> None:
            q = one.get("q", "").lower()
            if not q.strip():
                self._error(400, "InvalidRequest", 'Error: Params must have the property "q"')
                return
            words = q.split()
            found = [r for u, r in server.records.items() if u not in server.deleted
                     and all(w in r["value"]["text"].lower() for w in words)]
            found.sort(key=lambda r: (r["indexedAt"], r["uri"]), reverse=True)
            start = int(one.get("cursor") or 0)
            limit = min(int(one.get("limit", "25")), 100)
            page = found[start:start + limit]
            answer: dict[str, Any] = {"posts": [server.post_view(r) for r in page], "hitsTotal": len(found)}
            if start + limit < len(found):
                answer["cursor"] = str(start + limit)
            self._send(200, answer)

        def _create(self, did: str, body: dict[str, Any]) -> None:
            account = next(a for a in server.accounts.values() if a.did == did)
            value = body.get("record") or {}
            if body.get("repo") not in (did, account.handle):
                self._error(401, "AuthenticationRequired", "Input/repo must be the session's repo")
                return
            text = str(value.get("text", ""))
            if _graphemes(text) > GRAPHEME_LIMIT:
                self._error(400, "InvalidRequest", "Invalid app.bsky.feed.post record: Record/text must not be "
                                                   f"longer than {GRAPHEME_LIMIT} graphemes")
                return
            rkey = body.get("rkey")
            with server._lock:
                if rkey and f"at://{did}/app.bsky.feed.post/{rkey}" in server.records:
                    self._error(400, "InvalidRequest", "Record already exists")
                    return
                record = server._store(account, value, rkey)
            fault = server._fault("com.atproto.repo.createRecord", "drop_after_store", "slow_after_store")
            if fault == "drop_after_store":
                self.close_connection = True
                self.connection.close()
                return
            if fault == "slow_after_store":
                time.sleep(server.slow_seconds)
            self._send(200, {"uri": record["uri"], "cid": record["cid"],
                             "commit": {"cid": record["cid"], "rev": "3l"}, "validationStatus": "valid"})

        def do_GET(self) -> None:
            self._handle("GET")

        def do_POST(self) -> None:
            self._handle("POST")

    return Handler


def _graphemes(text: str) -> int:
    """Graphemes, approximately: code points not counting combining marks and joiners."""
    import unicodedata

    return sum(1 for ch in text if not unicodedata.combining(ch) and ch not in "\u200d\ufe0f")
