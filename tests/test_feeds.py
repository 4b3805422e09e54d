"""Feed pollers against local HTTP servers serving real-format RSS 2.0, Atom and Mastodon status JSON."""

from __future__ import annotations

import contextlib
import functools
import gzip
import ipaddress
import json
import logging
import socket
import threading
import tracemalloc
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from sqlalchemy import event, select

from bot.background.runtime import Runtime, build_runtime
from bot.background.scheduler import Scheduler
from bot.crisis.plan import Feeds, MastodonFeed, Plan, RssFeed
from bot.demo.slack_emulator import SlackEmulator
from bot.listening.feed_http import MAX_BODY_BYTES, MAX_WIRE_BYTES
from bot.listening.feeds import mastodon_key, poll_feeds, rss_key
from bot.listening.html_text import html_to_text
from handlers.slack_gateway import job_gateway
from models import FeedCursor, Mention, transaction, utcnow
from tests.conftest import make_settings, make_test_plan

RSS = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel>
  <title>Acme Air status</title>
  <link>https://status.example.com/</link>
  <description>Incident history</description>
  <item>
    <title>Check-in systems degraded</title>
    <link>https://status.example.com/incidents/1</link>
    <guid isPermaLink="false">incident-1</guid>
    <pubDate>Wed, 01 May 2024 12:00:00 +0000</pubDate>
    <description><![CDATA[<p>Acme Air check-in is <b>slow</b> &amp; some flights are delayed.</p><p>Update soon.</p>]]></description>
  </item>
  <item>
    <title>Resolved: baggage &amp; boarding</title>
    <link>https://status.example.com/incidents/2</link>
    <pubDate>Wed, 01 May 2024 14:30:00 +0200</pubDate>
    <dc:creator>Ops team</dc:creator>
    <description>All &lt;b&gt;systems&lt;/b&gt; normal &#8212; thanks for waiting.</description>
  </item>
</channel>
</rss>"""  # noqa: E501

ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title>Travel news</title>
  <id>urn:uuid:60a76c80-d399-11d9-b93C-0003939e0af6</id>
  <updated>2024-05-01T18:30:02Z</updated>
  <entry>
    <title>Acme Air strike rumours denied</title>
    <link href="https://news.example.org/acme-strike"/>
    <id>urn:uuid:1225c695-cfb8-4ebb-aaaa-80da344efa6a</id>
    <updated>2024-05-01T18:30:02Z</updated>
    <author><name>Jo Reporter</name></author>
    <content type="html">&lt;p&gt;Pilots at &lt;a href="https://acme.example"&gt;Acme Air&lt;/a&gt; are &lt;em&gt;not&lt;/em&gt; on strike.&lt;/p&gt;</content>
  </entry>
</feed>"""  # noqa: E501


def status(n: int, **extra: Any) -> dict[str, Any]:
    """A Mastodon Status entity as the API returns it (abridged to the fields War Room reads, plus a few)."""
    return {
        "id": str(110000000000000000 + n),
        "created_at": f"2024-05-01T12:{n % 60:02d}:00.000Z",
        "in_reply_to_id": None,
        "sensitive": False,
        "spoiler_text": "",
        "visibility": "public",
        "language": "en",
        "uri": f"https://mastodon.example/users/u{n}/statuses/{n}",
        "url": f"https://mastodon.example/@u{n}/{n}",
        "replies_count": 1,
        "reblogs_count": n % 3,
        "favourites_count": n,
        "content": '<p>Stuck at the gate again <a href="https://mastodon.example/tags/acmeair" '
        f'class="mention hashtag">#<span>AcmeAir</span></a> &amp; no news {n}</p>',
        "reblog": None,
        "account": {
            "id": str(n),
            "username": f"u{n}",
            "acct": f"u{n}@other.example",
            "followers_count": 100 + n,
        },
        "media_attachments": [],
        "mentions": [],
        "tags": [{"name": "acmeair", "url": "https://mastodon.example/tags/acmeair"}],
        **extra,
    }


@dataclass
class Route:
    """A canned answer: a body with headers, or a redirect; `etag` makes it answer 304 to a matching request."""

    body: bytes = b""
    content_type: str = "application/rss+xml"
    headers: dict[str, str] = field(default_factory=dict)
    status: int = 200
    etag: str | None = None
    content_length: bool = True  # False: no Content-Length, the body ends when the connection closes


class FakeServers(ThreadingHTTPServer):
    """One local server playing an RSS host, an Atom host and a Mastodon instance, plus canned routes."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.requests: list[tuple[str, dict[str, str], dict[str, list[str]]]] = []
        self.statuses = [status(n) for n in range(1, 4)]
        self.rate_limit_remaining = 300
        self.rate_limit_reset = "2024-05-01T13:00:00.000Z"
        self.fail_rss = False
        self.routes: dict[str, Route] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    @property
    def allow(self) -> frozenset[tuple[str, int]]:
        """The poller's explicit allowance for this local server (and for nothing else)."""
        return frozenset({("127.0.0.1", self.server_address[1])})

    def paths(self) -> list[str]:
        return [path for path, _, _ in self.requests]


class Handler(BaseHTTPRequestHandler):
    server: FakeServers

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        parsed = urlparse(self.path)
        query = parse_qs(parsed.query)
        self.server.requests.append((parsed.path, dict(self.headers.items()), query))
        route = self.server.routes.get(parsed.path)
        if route is not None:
            if route.etag is not None and self.headers.get("If-None-Match") == route.etag:
                self._reply(304, b"", route.content_type)
            else:
                headers = {**route.headers, **({"ETag": route.etag} if route.etag else {})}
                self._reply(route.status, route.body, route.content_type, headers, content_length=route.content_length)
        elif parsed.path == "/status.rss":
            if self.server.fail_rss:
                self._reply(500, b"boom", "text/plain")
            elif self.headers.get("If-None-Match") == '"v1"':
                self._reply(304, b"", "application/rss+xml")
            else:
                self._reply(200, RSS.encode(), "application/rss+xml", {"ETag": '"v1"'})
        elif parsed.path == "/news.atom":
            self._reply(200, ATOM.encode(), "application/atom+xml")
        elif parsed.path == "/api/v1/timelines/tag/acmeair":
            self._timeline(query)
        else:
            self._reply(404, b"{}", "application/json")

    def _timeline(self, query: dict[str, list[str]]) -> None:
        limit = int(query.get("limit", ["20"])[0])
        ordered = sorted(self.server.statuses, key=lambda s: int(s["id"]))
        if "min_id" in query:  # the page just after min_id: oldest first, returned newest first
            floor = int(query["min_id"][0])
            page = [s for s in ordered if int(s["id"]) > floor][:limit]
        else:
            floor = int(query.get("since_id", ["0"])[0])
            page = [s for s in ordered if int(s["id"]) > floor][-limit:]
        headers = {
            "X-RateLimit-Limit": "300",
            "X-RateLimit-Remaining": str(self.server.rate_limit_remaining),
            "X-RateLimit-Reset": self.server.rate_limit_reset,
        }
        self._reply(200, json.dumps(list(reversed(page))).encode(), "application/json", headers)

    def _reply(
        self, code: int, body: bytes, content_type: str, headers: dict[str, str] | None = None,
        *, content_length: bool = True,
    ) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        if content_length:
            self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        # The poller may hang up on a body it has seen enough of.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


def serve() -> Iterator[FakeServers]:
    server = FakeServers()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def servers() -> Iterator[FakeServers]:
    yield from serve()


@pytest.fixture
def bystander() -> Iterator[FakeServers]:
    """A second local server the poller is NOT allowed to reach: it must never see a request."""
    yield from serve()


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Tripwire: a connection to anything but loopback is recorded and fails before a packet leaves."""
    attempts: list[Any] = []
    real_connect = socket.socket.connect

    def connect(sock: socket.socket, address: Any) -> None:
        if isinstance(address, tuple) and not ipaddress.ip_address(str(address[0]).split("%")[0]).is_loopback:
            attempts.append(address)
            raise ConnectionRefusedError(f"test tripwire: no traffic to {address[0]}")
        real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    return attempts


def plan_with(servers: FakeServers, *, rss: bool = True, mastodon: bool = True) -> Plan:
    feeds = Feeds(
        rss=[RssFeed(url=f"{servers.url}/status.rss"), RssFeed(url=f"{servers.url}/news.atom")]
        if rss
        else [],
        mastodon=[
            MastodonFeed(instance=servers.url, tag="acmeair"),
            MastodonFeed(instance=servers.url, search="acme"),
        ]
        if mastodon
        else [],
    )
    return make_test_plan(feeds=feeds)


def mentions(runtime: Runtime, platform: str) -> list[Mention]:
    with transaction(runtime.sessions) as session:
        return list(session.scalars(select(Mention).where(Mention.platform == platform).order_by(Mention.id)))


def cursor(runtime: Runtime, key: str) -> FeedCursor:
    with transaction(runtime.sessions) as session:
        found = session.scalars(select(FeedCursor).where(FeedCursor.feed_key == key)).one()
        return found


def test_html_becomes_text_with_entities_unescaped() -> None:
    assert html_to_text("<p>a &amp; b</p><p>c<br/>d &lt;e&gt; &#8212; &eacute;</p><script>x()</script>") == (
        "a & b\n\nc\nd <e> — é"
    )
    assert "<" not in html_to_text('<a href="x">#<span>tag</span></a>') and html_to_text("plain") == "plain"


def test_rss_and_atom_items_become_mentions_and_an_unchanged_feed_is_not_refetched(
    runtime: Runtime, servers: FakeServers
) -> None:
    plan = plan_with(servers, mastodon=False)
    now = utcnow()
    results = poll_feeds(runtime.sessions, plan, now, allow=servers.allow)
    assert [r.accepted for r in results] == [2, 1]
    by_id = {m.external_id: m for m in mentions(runtime, "rss")}
    first, second = by_id["incident-1"], by_id["https://status.example.com/incidents/2"]
    [atom] = [m for key, m in by_id.items() if key.startswith("urn:uuid:")]
    assert first.external_id == "incident-1"
    assert (
        first.text
        == "Check-in systems degraded\nAcme Air check-in is slow & some flights are delayed.\n\nUpdate soon."
    )
    assert first.created_at == datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    assert second.external_id == "https://status.example.com/incidents/2"  # no guid: the link
    assert second.created_at == datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
    assert second.author == "Ops team"
    assert second.text == "Resolved: baggage & boarding\nAll systems normal — thanks for waiting."
    assert atom.external_id.startswith("urn:uuid:1225c695") and atom.author == "Jo Reporter"
    assert atom.text == "Acme Air strike rumours denied\nPilots at Acme Air are not on strike."
    assert all(
        m.source == "rss" and m.sentiment_label in ("negative", "neutral", "positive") for m in (first, atom)
    )
    assert cursor(runtime, rss_key(plan.feeds.rss[0])).cursor["etag"] == '"v1"'

    servers.requests.clear()
    again = poll_feeds(runtime.sessions, plan, now + timedelta(minutes=5), allow=servers.allow)
    assert [r.accepted for r in again] == [0, 0]
    rss_request = next(headers for path, headers, _ in servers.requests if path == "/status.rss")
    assert rss_request["If-None-Match"] == '"v1"'
    assert len(mentions(runtime, "rss")) == 3


def test_mastodon_pages_forward_from_since_id_and_backs_off_when_rate_limited(
    runtime: Runtime, servers: FakeServers
) -> None:
    plan = plan_with(servers, rss=False)
    tag_feed = plan.feeds.mastodon[0]
    now = utcnow()
    results = poll_feeds(runtime.sessions, plan, now, allow=servers.allow)
    assert results[0].accepted == 3
    assert results[1].skipped and "token" in (results[1].error or "")  # search needs a user token
    stored = mentions(runtime, "mastodon")
    assert stored[0].text == "Stuck at the gate again #AcmeAir & no news 1"
    assert (stored[0].author, stored[0].author_followers, stored[0].likes) == ("u1@other.example", 101, 1)
    assert cursor(runtime, mastodon_key(tag_feed)).cursor["since_id"] == status(3)["id"]

    # 45 new posts and a reblog: read in two pages with min_id, the reblog skipped.
    servers.statuses += [status(n) for n in range(4, 49)]
    servers.statuses.append(status(49, reblog={"id": "1"}))
    servers.requests.clear()
    results = poll_feeds(runtime.sessions, plan, now + timedelta(minutes=5), allow=servers.allow)
    assert results[0].accepted == 45
    pages = [query for path, _, query in servers.requests if path.endswith("/acmeair")]
    assert [p["min_id"][0] for p in pages] == [status(3)["id"], status(43)["id"]]
    assert cursor(runtime, mastodon_key(tag_feed)).cursor["since_id"] == status(49)["id"]

    # The instance says the limit is used up: no request until X-RateLimit-Reset.
    servers.rate_limit_remaining = 0
    reset = now + timedelta(minutes=30)
    servers.rate_limit_reset = reset.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    servers.statuses.append(status(50))
    poll_feeds(runtime.sessions, plan, now + timedelta(minutes=10), allow=servers.allow)
    assert cursor(runtime, mastodon_key(tag_feed)).next_poll_at == reset.replace(microsecond=0)
    servers.requests.clear()
    skipped = poll_feeds(runtime.sessions, plan, now + timedelta(minutes=15), allow=servers.allow)
    assert skipped[0].skipped and servers.requests == []
    servers.rate_limit_remaining = 299
    servers.statuses.append(status(51))
    after = poll_feeds(runtime.sessions, plan, reset + timedelta(seconds=1), allow=servers.allow)
    assert after[0].accepted == 1 and len(mentions(runtime, "mastodon")) == 50


def test_a_failing_feed_is_recorded_and_the_others_still_polled(
    runtime: Runtime, servers: FakeServers
) -> None:
    servers.fail_rss = True
    plan = plan_with(servers)
    results = poll_feeds(runtime.sessions, plan, utcnow(), allow=servers.allow)
    assert results[0].error and "500" in results[0].error
    assert results[1].accepted == 1 and results[2].accepted == 3
    assert "500" in (cursor(runtime, rss_key(plan.feeds.rss[0])).error or "")


# ---- hostile and broken feeds -------------------------------------------------------------------


def rss(*items: str, declaration: str = '<?xml version="1.0" encoding="UTF-8"?>') -> str:
    return f'{declaration}\n<rss version="2.0"><channel><title>t</title>{"".join(items)}</channel></rss>'


def item(title: str, *, guid: str | None = None, link: str | None = None, date: str = "Wed, 01 May 2024 12:00:00 +0000",
         extra: str = "") -> str:
    parts = [f"<title>{title}</title>", f"<pubDate>{date}</pubDate>", extra]
    if guid is not None:
        parts.append(guid if guid.startswith("<") else f'<guid isPermaLink="false">{guid}</guid>')
    if link is not None:
        parts.append(f"<link>{link}</link>")
    return f"<item>{''.join(parts)}</item>"


def rss_plan(servers: FakeServers, *paths: str) -> Plan:
    return make_test_plan(feeds=Feeds(rss=[RssFeed(url=f"{servers.url}{path}") for path in paths]))


def poll(runtime: Runtime, servers: FakeServers, plan: Plan, at: datetime | None = None) -> list[Any]:
    return poll_feeds(runtime.sessions, plan, at or utcnow(), allow=servers.allow)


REDIRECT_TARGETS = [
    "http://127.0.0.1:{bystander}/feed.rss",  # loopback, but not the allowed port
    "http://localhost:{bystander}/feed.rss",  # a name for loopback
    "http://[::1]:{bystander}/feed.rss",
    "http://[::ffff:127.0.0.1]:{bystander}/feed.rss",  # IPv4 loopback inside IPv6
    "http://10.0.0.1/feed.rss",
    "http://192.168.1.1:8080/feed.rss",
    "http://169.254.169.254/latest/meta-data/",  # the cloud metadata service
    "http://[fd00::1]/feed.rss",
    "http://100.64.0.1/feed.rss",  # carrier-grade NAT
]


@pytest.mark.parametrize("target", REDIRECT_TARGETS)
def test_a_feed_redirecting_to_a_non_public_address_is_refused_before_connecting(
    runtime: Runtime, servers: FakeServers, bystander: FakeServers, loopback_only: list[Any], target: str
) -> None:
    # The allowed local server stands in for a public feed host; its feed moved "elsewhere".
    location = target.format(bystander=bystander.server_address[1])
    servers.routes["/feed.rss"] = Route(status=302, headers={"Location": location})
    bystander.routes["/feed.rss"] = Route(rss(item("Leaked", guid="inside-1")).encode())
    plan = rss_plan(servers, "/feed.rss")
    [result] = poll(runtime, servers, plan)
    assert result.error and "not a public address" in result.error
    assert "not a public address" in (cursor(runtime, rss_key(plan.feeds.rss[0])).error or "")
    assert loopback_only == [] and bystander.requests == []  # refused before any connection was tried
    assert mentions(runtime, "rss") == []


def test_a_feed_or_instance_on_a_non_public_address_is_refused(
    runtime: Runtime, servers: FakeServers, bystander: FakeServers, loopback_only: list[Any]
) -> None:
    plan = make_test_plan(feeds=Feeds(rss=[RssFeed(url="http://10.1.2.3/status.rss"),
                                           RssFeed(url=f"{bystander.url}/status.rss")],
                                      mastodon=[MastodonFeed(instance=bystander.url, tag="acmeair")]))
    results = poll(runtime, servers, plan)
    assert all(r.error and "not a public address" in r.error for r in results)
    assert loopback_only == [] and bystander.requests == []


@functools.cache
def bomb(encoding: str) -> bytes:
    """128 MiB of RSS (almost all spaces) compressed to well under a megabyte."""
    compressor = zlib.compressobj(1, zlib.DEFLATED, 31 if encoding == "gzip" else 15)
    parts = [compressor.compress(rss(item("Bomb", guid="bomb-1", extra="<description>"))[:-len("</channel></rss>")]
                                 .encode())]
    spaces = b" " * (1 << 20)
    parts += [compressor.compress(spaces) for _ in range(BOMB_MIB)]
    parts.append(compressor.compress(b"</description></item></channel></rss>") + compressor.flush())
    return b"".join(parts)


BOMB_MIB = 128


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_a_compression_bomb_is_refused_without_being_inflated(
    runtime: Runtime, servers: FakeServers, encoding: str
) -> None:
    body = bomb(encoding)
    assert len(body) < 1 << 20
    servers.routes["/bomb.rss"] = Route(body, headers={"Content-Encoding": encoding})
    plan = rss_plan(servers, "/bomb.rss")
    tracemalloc.start()
    try:
        [result] = poll(runtime, servers, plan)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.error and f"inflates to over the {MAX_BODY_BYTES:,}-byte cap" in result.error
    assert peak < 40 << 20, f"polling held {peak >> 20} MiB for a {BOMB_MIB} MiB bomb"
    assert mentions(runtime, "rss") == []


def test_a_body_labelled_compressed_that_is_not_is_read_and_a_corrupt_one_refused(
    runtime: Runtime, servers: FakeServers
) -> None:
    plain = rss(item("Served plain", guid="plain-1")).encode()
    corrupt = bytearray(gzip.compress(rss(item("Corrupt", guid="corrupt-1")).encode()))
    corrupt[-8] ^= 0xFF  # its CRC no longer matches
    servers.routes["/plain.rss"] = Route(plain, headers={"Content-Encoding": "gzip"})
    servers.routes["/corrupt.rss"] = Route(bytes(corrupt), headers={"Content-Encoding": "gzip"})
    results = poll(runtime, servers, rss_plan(servers, "/plain.rss", "/corrupt.rss"))
    assert (results[0].error, results[0].accepted) == (None, 1)
    assert results[1].error and "gzip body is corrupt" in results[1].error
    assert [m.external_id for m in mentions(runtime, "rss")] == ["plain-1"]


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "until-close"])
def test_a_body_over_the_size_cap_is_refused(runtime: Runtime, servers: FakeServers, declared: bool) -> None:
    padding = "<!--" + "x" * (MAX_WIRE_BYTES + 1024) + "-->"
    servers.routes["/big.rss"] = Route(rss(item("Big", guid="big-1"), padding).encode(), content_length=declared)
    plan = rss_plan(servers, "/big.rss")
    [result] = poll(runtime, servers, plan)
    assert result.error and f"over the {MAX_WIRE_BYTES:,}-byte cap" in result.error
    assert mentions(runtime, "rss") == []


def test_an_item_with_an_impossible_date_is_skipped_and_logged_and_the_others_stored(
    runtime: Runtime, servers: FakeServers, caplog: pytest.LogCaptureFixture
) -> None:
    def entry(n: int, updated: str) -> str:
        return f"<entry><title>Acme post {n}</title><id>urn:acme:{n}</id><updated>{updated}</updated></entry>"

    servers.routes["/dates.atom"] = Route(
        ('<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>'
         + entry(1, "2024-05-01T10:00:00Z")
         + entry(2, "0001-01-01T00:00:00+01:00")  # year 0 in UTC
         + entry(3, "9999-12-31T23:59:59-01:00")  # year 10000 in UTC
         + entry(4, "2024-05-01T11:00:00+02:00")
         + "</feed>").encode(), content_type="application/atom+xml")
    plan = rss_plan(servers, "/dates.atom")
    with caplog.at_level(logging.WARNING, logger="bot.listening.feeds"):
        [result] = poll(runtime, servers, plan)
    assert result.error is None and result.accepted == 2
    assert {m.external_id: m.created_at for m in mentions(runtime, "rss")} == {
        "urn:acme:1": datetime(2024, 5, 1, 10, tzinfo=UTC), "urn:acme:4": datetime(2024, 5, 1, 9, tzinfo=UTC)}
    skipped = [r.getMessage() for r in caplog.records if "skipped an item" in r.getMessage()]
    assert len(skipped) == 2 and all("out of range" in message for message in skipped)
    assert "urn:acme:2" in skipped[0] and "urn:acme:3" in skipped[1]
    assert cursor(runtime, rss_key(plan.feeds.rss[0])).error is None


def test_a_title_the_html_parser_chokes_on_is_read_as_text_and_the_next_feed_still_polled(
    runtime: Runtime, servers: FakeServers
) -> None:
    assert html_to_text("Conditional <![ IE ]> hacks") == "Conditional <![ IE ]> hacks"
    servers.routes["/css.rss"] = Route(rss(item("Conditional &lt;![ IE ]&gt; hacks", guid="css-1"),
                                           item("Acme Air grid layout", guid="css-2")).encode())
    plan = make_test_plan(feeds=Feeds(rss=[RssFeed(url=f"{servers.url}/css.rss"),
                                           RssFeed(url=f"{servers.url}/news.atom")]))
    results = poll(runtime, servers, plan)
    assert [(r.error, r.accepted) for r in results] == [(None, 2), (None, 1)]
    texts = {m.external_id: m.text for m in mentions(runtime, "rss")}
    assert texts["css-1"] == "Conditional <![ IE ]> hacks"


def test_relative_links_are_resolved_against_where_the_feed_was_fetched(
    runtime: Runtime, servers: FakeServers
) -> None:
    servers.routes["/old.rss"] = Route(status=301, headers={"Location": "/feeds/status.rss"})
    servers.routes["/feeds/status.rss"] = Route(rss(item("Relative", guid="rel-1", link="incidents/5"),
                                                    item("Rooted", guid="rel-2", link="/incidents/6")).encode())
    # Content-Location names the document's own location; links are relative to it.
    servers.routes["/mirror.rss"] = Route(rss(item("Mirrored", guid="rel-3", link="p/7")).encode(),
                                          headers={"Content-Location": "https://news.example.org/archive/feed.xml"})
    plan = rss_plan(servers, "/old.rss", "/mirror.rss")
    results = poll(runtime, servers, plan)
    assert [(r.error, r.accepted) for r in results] == [(None, 2), (None, 1)]
    assert {m.external_id: m.url for m in mentions(runtime, "rss")} == {
        "rel-1": f"{servers.url}/feeds/incidents/5",
        "rel-2": f"{servers.url}/incidents/6",
        "rel-3": "https://news.example.org/archive/p/7",
    }


def test_an_id_that_is_not_a_permalink_is_not_taken_for_a_link(runtime: Runtime, servers: FakeServers) -> None:
    servers.routes["/guids.rss"] = Route(rss(
        # A guid is a permalink unless it says otherwise, and feedparser copies it into `link`...
        item("Tag guid", guid="<guid>tag:acme.example,2024:7</guid>"),
        item("Bare guid", guid="<guid>item-42</guid>"),  # ...but only a full URL is one
        item("Not a permalink", guid="https://status.example.com/x/8"),
        item("A permalink", guid="<guid>https://status.example.com/p/9</guid>"),
    ).encode())
    servers.routes["/ids.atom"] = Route(
        b'<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title><entry><title>Atom id only</title>'
        b"<id>urn:uuid:0b7e0c38-0000-4000-8000-000000000010</id><updated>2024-05-01T10:00:00Z</updated>"
        b"</entry></feed>", content_type="application/atom+xml")
    plan = rss_plan(servers, "/guids.rss", "/ids.atom")
    results = poll(runtime, servers, plan)
    assert [(r.error, r.accepted) for r in results] == [(None, 4), (None, 1)]
    assert {m.external_id: m.url for m in mentions(runtime, "rss")} == {
        "tag:acme.example,2024:7": None,
        "item-42": None,  # as written: not made into a link to this server
        "https://status.example.com/x/8": None,
        "https://status.example.com/p/9": "https://status.example.com/p/9",
        "urn:uuid:0b7e0c38-0000-4000-8000-000000000010": None,
    }


def test_an_item_with_neither_id_nor_link_gets_a_stable_id_from_its_content(
    runtime: Runtime, servers: FakeServers
) -> None:
    servers.routes["/bare.rss"] = Route(rss(item("Acme Air lost my bag", extra="<description>Gate 4</description>"),
                                            item("Acme Air lost my cat")).encode())
    plan = rss_plan(servers, "/bare.rss")
    [first] = poll(runtime, servers, plan)
    assert (first.error, first.accepted) == (None, 2)
    stored = mentions(runtime, "rss")
    assert {m.text for m in stored} == {"Acme Air lost my bag\nGate 4", "Acme Air lost my cat"}
    assert all(m.external_id.startswith("sha256:") and m.url is None for m in stored)
    [again] = poll(runtime, servers, plan, utcnow() + timedelta(minutes=5))  # no ETag: fetched and read again
    assert (again.error, again.accepted) == (None, 0)
    assert len(mentions(runtime, "rss")) == 2


@pytest.mark.parametrize(("charset", "title"), [("windows-1251", "Акме Эйр: задержки рейсов"),
                                                ("iso-8859-2", "Acme Air w Łodzi: opóźnienia")])
def test_the_charset_of_the_content_type_header_decodes_the_feed(
    runtime: Runtime, servers: FakeServers, charset: str, title: str
) -> None:
    # The XML declaration names no encoding: only the HTTP header says how to read the bytes.
    body = rss(item(title, guid="cs-1"), declaration='<?xml version="1.0"?>').encode(charset)
    servers.routes["/cs.rss"] = Route(body, content_type=f"application/rss+xml; charset={charset}")
    [result] = poll(runtime, servers, rss_plan(servers, "/cs.rss"))
    assert result.error is None
    assert [m.text for m in mentions(runtime, "rss")] == [title]


def test_a_body_that_looks_like_a_file_path_is_never_opened(
    runtime: Runtime, servers: FakeServers, tmp_path: Path
) -> None:
    local = tmp_path / "local.rss"
    local.write_text(rss(item("Read from our own disk", guid="disk-1")))
    servers.routes["/path.rss"] = Route(str(local).encode(), content_type="text/plain")
    [result] = poll(runtime, servers, rss_plan(servers, "/path.rss"))
    assert result.accepted == 0 and mentions(runtime, "rss") == []


def test_a_failed_store_keeps_the_old_etag_and_the_round_goes_on(runtime: Runtime, servers: FakeServers) -> None:
    servers.routes["/v.rss"] = Route(rss(item("First", guid="v-1")).encode(), etag='"v1"')
    plan = make_test_plan(feeds=Feeds(rss=[RssFeed(url=f"{servers.url}/v.rss"),
                                           RssFeed(url=f"{servers.url}/news.atom")]))
    now = utcnow()
    assert [r.accepted for r in poll(runtime, servers, plan, now)] == [1, 1]

    # The feed changes; the database fails while its new item is stored.
    servers.routes["/v.rss"] = Route(rss(item("First", guid="v-1"), item("Second", guid="v-2")).encode(), etag='"v2"')
    servers.routes["/news.atom"] = Route(ATOM.replace("80da344efa6a", "80da344efa6b").encode(),
                                         content_type="application/atom+xml")
    failures = []

    def disk_full(conn: Any, cursor_: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO MENTIONS") and not failures:
            failures.append(statement)
            raise runtime.engine.dialect.dbapi.OperationalError("simulated: could not extend file (disk full)")

    event.listen(runtime.engine, "before_cursor_execute", disk_full)
    try:
        results = poll(runtime, servers, plan, now + timedelta(minutes=5))
    finally:
        event.remove(runtime.engine, "before_cursor_execute", disk_full)
    assert failures
    assert results[0].error and "disk full" in results[0].error  # the bad feed is recorded with its reason
    assert results[1].error is None and results[1].accepted == 1  # and the next feed still polled
    key = rss_key(plan.feeds.rss[0])
    assert "disk full" in (cursor(runtime, key).error or "") and cursor(runtime, key).cursor["etag"] == '"v1"'

    servers.requests.clear()
    [again, _] = poll(runtime, servers, plan, now + timedelta(minutes=10))
    request = next(headers for path, headers, _ in servers.requests if path == "/v.rss")
    assert request.get("If-None-Match") == '"v1"'  # not the ETag of the version that was never stored
    assert again.accepted == 1 and {m.external_id for m in mentions(runtime, "rss")} >= {"v-1", "v-2"}
    assert cursor(runtime, key).cursor["etag"] == '"v2"' and cursor(runtime, key).error is None


@pytest.mark.parametrize("allowance", ["", "own"])
def test_the_scheduler_polls_with_the_allowance_of_its_settings_and_none_by_default(
    database_url: str, emulator: SlackEmulator, servers: FakeServers, allowance: str
) -> None:
    value = f"127.0.0.1:{servers.server_address[1]}" if allowance == "own" else ""
    runtime = build_runtime(make_settings(database_url, emulator, warroom_feed_allow_hosts=value),
                            rss_plan(servers, "/status.rss"))
    try:
        accepted = Scheduler(runtime, job_gateway(runtime)).poll_feeds(utcnow())
        error = cursor(runtime, rss_key(runtime.plan.feeds.rss[0])).error
    finally:
        runtime.engine.dispose()
    if allowance == "own":
        assert (accepted, error) == (2, None)
    else:  # no allowance: the local server is just another non-public address
        assert accepted == 0 and "not a public address" in (error or "") and servers.requests == []
