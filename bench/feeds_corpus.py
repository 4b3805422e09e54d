"""The feed poller against feedparser's own test corpus, each file served over real local HTTP.

    pip download --no-deps --no-binary :all: feedparser==6.0.14 -d /tmp/fp
    tar xzf /tmp/fp/feedparser-6.0.14.tar.gz -C /tmp/fp
    python bench/feeds_corpus.py /tmp/fp/feedparser-6.0.14/tests

Every file under the corpus folder is served as runtests.py serves it: with the headers its
`Header:` lines name (Content-Type and its charset, Content-Location, ETag, Status, Location…), and
the `compression/` files with the Content-Encoding their name says. Redirects to the corpus's own
`http://localhost:8097/` are pointed at this server. All the files are then polled as feeds in one
round of `poll_feeds` (the real fetcher, with this one server allowed), into a fresh SQLite
database. (Run against the poller before issue 13, which had no allowance, it polls a feed at a
time, since some failures escaped that poller's round.)

Prints how many items feedparser finds in the corpus, how many were storable (stored, or the same
id as an item stored before), how many were skipped and why, how many feeds failed and why, and
how many items vanished with no reason (found by feedparser, neither stored nor skipped).
"""

from __future__ import annotations

import argparse
import gzip
import inspect
import io
import logging
import re
import resource
import sys
import tempfile
import threading
import time
import zlib
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import feedparser
from sqlalchemy import create_engine, func, select

from bot.crisis.plan import BUNDLED_PLAN, Feeds, RssFeed, load_plan
from bot.listening.feeds import poll_feeds
from models import Base, Mention, make_engine, make_session_factory

HEADER = re.compile(rb"^Header:\s+([^:]+):(.+)$", re.MULTILINE)
CORPUS_HOST = "http://localhost:8097"


def corpus_headers(path: Path, blob: bytes, own_url: str) -> tuple[int, dict[str, str]]:
    """The status and headers runtests.py would send for this file."""
    if path.parent.name == "compression":
        encoding = "gzip" if path.suffix == ".gz" else "deflate"
        return 200, {"Content-Type": "application/xml", "Content-Encoding": encoding}
    headers = {name.decode().strip(): value.decode("utf-8", "replace").strip() for name, value in HEADER.findall(blob)}
    headers = {name: value.replace(CORPUS_HOST, own_url) for name, value in headers.items()}
    status = int(headers.pop("Status", "200"))
    content_type = next((headers.pop(name) for name in list(headers) if name.lower() == "content-type"), "text/xml")
    return status, {"Content-Type": content_type, **headers}


class CorpusServer(ThreadingHTTPServer):
    def __init__(self, root: Path) -> None:
        super().__init__(("127.0.0.1", 0), CorpusHandler)
        self.root = root

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class CorpusHandler(BaseHTTPRequestHandler):
    server: CorpusServer

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if self.path == "/-/return-304.xml":  # runtests.py's own short cut for its redirect-to-304 case
            self.send_response(304)
            self.end_headers()
            return
        path = (self.server.root / self.path.lstrip("/").split("?")[0]).resolve()
        if not path.is_file() or self.server.root not in path.parents:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        blob = path.read_bytes()
        status, headers = corpus_headers(path, blob, self.server.url)
        etag = headers.get("ETag")
        if etag is not None and self.headers.get("If-None-Match") == etag:
            status, blob = 304, b""
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(blob)))
        self.end_headers()
        self.wfile.write(blob)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


def found_by_feedparser(path: Path, blob: bytes, own_url: str) -> int:
    """How many items feedparser itself finds in the file, given the same headers."""
    if path.parent.name == "compression":
        for inflate in (gzip.decompress, zlib.decompress, lambda data: zlib.decompress(data, -15)):
            try:
                blob = inflate(blob)
                break
            except (OSError, EOFError, zlib.error):
                continue
    _, headers = corpus_headers(path, blob, own_url)
    lowered = {name.lower(): value for name, value in headers.items()}
    return len(feedparser.parse(io.BytesIO(blob), response_headers=lowered).entries)


def category(reason: str) -> str:
    """A skip or error reason without its item id, numbers and URLs, to count alike reasons together."""
    reason = re.sub(r"^item '.*?': ", "", reason) if reason.startswith("item '") else reason
    reason = re.sub(r"^item None: ", "", reason)
    reason = re.sub(r"https?://\S+", "URL", reason)
    reason = re.sub(r"'[^']*'", "'…'", reason)
    return re.sub(r"\d[\d,]*", "N", reason)[:120]


class SkipCounter(logging.Handler):
    """Counts the poller's "skipped an item" log lines (the older poller has no bad_items)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.reasons: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if "skipped an item: " in message:
            self.reasons[category(message.split("skipped an item: ", 1)[1])] += 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", type=Path, help="the tests/ folder of feedparser's source distribution")
    parser.add_argument("--limit", type=int, default=0, help="poll only the first N files")
    args = parser.parse_args(argv)
    root = args.corpus.resolve()
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in (".xml", ".gz", ".z"))
    files = [p for p in files if p.name != "runtests.py"][: args.limit or None]

    server = CorpusServer(root.parent)  # the corpus's redirects name /tests/...
    threading.Thread(target=server.serve_forever, daemon=True).start()
    skips = SkipCounter()
    logging.getLogger("bot.listening.feeds").addHandler(skips)
    logging.getLogger("bot.listening.feeds").setLevel(logging.INFO)
    logging.getLogger("bot.listening.feeds").propagate = False

    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/corpus.db"
        engine = create_engine(url)
        Base.metadata.create_all(engine)
        engine.dispose()
        engine = make_engine(url)
        sessions = make_session_factory(engine)
        base_plan = load_plan(BUNDLED_PLAN)
        guarded = "allow" in inspect.signature(poll_feeds).parameters
        allow = frozenset({("127.0.0.1", server.server_address[1])})
        now = datetime.now(UTC)
        found = storable = 0
        errors: Counter[str] = Counter()
        escaped: Counter[str] = Counter()
        vanished = vanished_feeds = in_failed_feeds = 0
        failed_files: list[str] = []
        urls = [f"{server.url}/{path.relative_to(root.parent).as_posix()}" for path in files]
        expected = [found_by_feedparser(path, path.read_bytes(), server.url) for path in files]
        found = sum(expected)
        started = time.perf_counter()
        if guarded:  # one round over every feed, as the scheduler polls
            plan = base_plan.model_copy(update={"feeds": Feeds(rss=[RssFeed(url=u) for u in urls])})
            outcomes: list[tuple[Any, int]] = [
                (result, len(result.bad_items)) for result in poll_feeds(sessions, plan, now, allow=allow)]
        else:  # the older poller: a feed at a time, since some failures escaped its round
            outcomes = []
            for feed_url in urls:
                plan = base_plan.model_copy(update={"feeds": Feeds(rss=[RssFeed(url=feed_url)])})
                before = sum(skips.reasons.values())
                try:
                    [result] = poll_feeds(sessions, plan, now)
                except Exception as exc:
                    escaped[category(f"{type(exc).__name__}: {exc}")] += 1
                    result = None
                outcomes.append((result, sum(skips.reasons.values()) - before))
        for (result, skipped_here), count in zip(outcomes, expected, strict=True):
            if result is None:
                in_failed_feeds += count
                continue
            storable += result.fetched
            if result.error:
                errors[category(result.error)] += 1
                failed_files.append(f"{result.feed_key.rsplit('/', 2)[-2:]}: {result.error[:100]}")
                in_failed_feeds += count
            elif result.fetched + skipped_here < count:
                vanished += count - result.fetched - skipped_here
                vanished_feeds += 1
        elapsed = time.perf_counter() - started
        with sessions() as session:
            stored = session.scalar(select(func.count()).select_from(Mention)) or 0
        engine.dispose()
    server.shutdown()

    skipped = sum(skips.reasons.values())
    print(f"files polled:              {len(files):,} in {elapsed:.1f} s "
          f"(peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MiB)")
    print(f"items feedparser finds:    {found:,}")
    print(f"items storable:            {storable:,} ({stored:,} distinct ids stored)")
    print(f"items skipped and logged:  {skipped:,}")
    for reason, count in skips.reasons.most_common():
        print(f"    {count:6,}  {reason}")
    print(f"items vanished silently:   {vanished:,} (in {vanished_feeds:,} feeds that did not fail)")
    print(f"feeds failed (recorded):   {sum(errors.values()):,} (holding {in_failed_feeds:,} items)")
    for reason, count in errors.most_common():
        print(f"    {count:6,}  {reason}")
    for line in failed_files[:20]:
        print(f"        {line}")
    print(f"feeds escaping the round:  {sum(escaped.values()):,}")
    for reason, count in escaped.most_common():
        print(f"    {count:6,}  {reason}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
