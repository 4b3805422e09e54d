"""Feed pollers against local HTTP servers serving real-format RSS 2.0, Atom and Mastodon status JSON."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from sqlalchemy import select

from bot.feeds import mastodon_key, poll_feeds, rss_key
from bot.html_text import html_to_text
from bot.plan import Feeds, MastodonFeed, Plan, RssFeed
from bot.runtime import Runtime
from models import FeedCursor, Mention, transaction, utcnow
from tests.conftest import make_test_plan

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


class FakeServers(ThreadingHTTPServer):
    """One local server playing an RSS host, an Atom host and a Mastodon instance."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.requests: list[tuple[str, dict[str, str], dict[str, list[str]]]] = []
        self.statuses = [status(n) for n in range(1, 4)]
        self.rate_limit_remaining = 300
        self.rate_limit_reset = "2024-05-01T13:00:00.000Z"
        self.fail_rss = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    server: FakeServers

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        parsed = urlparse(self.path)
        query = parse_qs(parsed.query)
        self.server.requests.append((parsed.path, dict(self.headers.items()), query))
        if parsed.path == "/status.rss":
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
        self, code: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


@pytest.fixture
def servers() -> Iterator[FakeServers]:
    server = FakeServers()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


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
    results = poll_feeds(runtime.sessions, plan, now)
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
    again = poll_feeds(runtime.sessions, plan, now + timedelta(minutes=5))
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
    results = poll_feeds(runtime.sessions, plan, now)
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
    results = poll_feeds(runtime.sessions, plan, now + timedelta(minutes=5))
    assert results[0].accepted == 45
    pages = [query for path, _, query in servers.requests if path.endswith("/acmeair")]
    assert [p["min_id"][0] for p in pages] == [status(3)["id"], status(43)["id"]]
    assert cursor(runtime, mastodon_key(tag_feed)).cursor["since_id"] == status(49)["id"]

    # The instance says the limit is used up: no request until X-RateLimit-Reset.
    servers.rate_limit_remaining = 0
    reset = now + timedelta(minutes=30)
    servers.rate_limit_reset = reset.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    servers.statuses.append(status(50))
    poll_feeds(runtime.sessions, plan, now + timedelta(minutes=10))
    assert cursor(runtime, mastodon_key(tag_feed)).next_poll_at == reset.replace(microsecond=0)
    servers.requests.clear()
    skipped = poll_feeds(runtime.sessions, plan, now + timedelta(minutes=15))
    assert skipped[0].skipped and servers.requests == []
    servers.rate_limit_remaining = 299
    servers.statuses.append(status(51))
    after = poll_feeds(runtime.sessions, plan, reset + timedelta(seconds=1))
    assert after[0].accepted == 1 and len(mentions(runtime, "mastodon")) == 50


def test_a_failing_feed_is_recorded_and_the_others_still_polled(
    runtime: Runtime, servers: FakeServers
) -> None:
    servers.fail_rss = True
    plan = plan_with(servers)
    results = poll_feeds(runtime.sessions, plan, utcnow())
    assert results[0].error and "500" in results[0].error
    assert results[1].accepted == 1 and results[2].accepted == 3
    assert "500" in (cursor(runtime, rss_key(plan.feeds.rss[0])).error or "")
