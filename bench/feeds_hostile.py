"""The feed poller against hand-made hostile feeds: what each costs in time and memory.

    python bench/feeds_hostile.py

Each case is served over real local HTTP by this process and polled through `poll_feeds` (this one
server allowed) by a child process of its own, which reports the outcome, the seconds the poll took
and its peak resident memory (VmHWM) above what it held just before polling:

- a gzip bomb: 1 GiB of spaces inside an RSS item, gzip'd to a few MB;
- a one-item feed of 50 MB, plain, and the same gzip'd;
- a one-item feed just under the inflated-size cap, gzip'd (the largest feed that is read).
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

CASES = ("gzip-bomb-1GiB", "one-item-50MB", "one-item-50MB-gzip", "one-item-at-cap-gzip")
HEAD = (b'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>t</title>'
        b"<item><title>Acme Air</title><guid isPermaLink=\"false\">big-1</guid><description>")
TAIL = b"</description></item></channel></rss>"


def body(case: str) -> tuple[bytes, dict[str, str]]:
    """The bytes on the wire and the headers of a case."""
    from bot.listening.feed_http import MAX_BODY_BYTES

    if case == "gzip-bomb-1GiB":
        compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
        spaces = b" " * (1 << 20)
        parts = [compressor.compress(HEAD)] + [compressor.compress(spaces) for _ in range(1024)]
        return b"".join([*parts, compressor.compress(TAIL), compressor.flush()]), {"Content-Encoding": "gzip"}
    size = MAX_BODY_BYTES - 4096 if case == "one-item-at-cap-gzip" else 50_000_000
    # Escaped HTML paragraphs, as a feed carries an article.
    paragraph = b"&lt;p&gt;Acme Air delays again &amp;amp; again, says everyone.&lt;/p&gt;\n"
    document = HEAD + paragraph * ((size - len(HEAD) - len(TAIL)) // len(paragraph)) + TAIL
    if case.endswith("gzip"):
        return gzip.compress(document, 6), {"Content-Encoding": "gzip"}
    return document, {}


def vm_hwm_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


class Handler(BaseHTTPRequestHandler):
    server: HostileServer

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        wire, headers = self.server.cases[self.path.lstrip("/")]
        self.send_response(200)
        self.send_header("Content-Type", "application/rss+xml")
        self.send_header("Content-Length", str(len(wire)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the poller hung up
            self.wfile.write(wire)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


class HostileServer(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.cases = {case: body(case) for case in CASES}


def poll_once(url: str, port: int) -> dict[str, Any]:
    """Poll one feed in a fresh database; runs in a child process, so VmHWM is this poll's alone."""
    from sqlalchemy import create_engine

    from bot.crisis.plan import BUNDLED_PLAN, Feeds, RssFeed, load_plan
    from bot.listening.feeds import poll_feeds
    from models import Base, make_engine, make_session_factory

    with tempfile.TemporaryDirectory() as folder:
        database = f"sqlite:///{folder}/hostile.db"
        engine = create_engine(database)
        Base.metadata.create_all(engine)
        engine.dispose()
        engine = make_engine(database)
        plan = load_plan(BUNDLED_PLAN)
        plan = plan.model_copy(update={"feeds": Feeds(rss=[RssFeed(url=url)])})
        sessions = make_session_factory(engine)
        before = vm_hwm_kib()
        started = time.perf_counter()
        [result] = poll_feeds(sessions, plan, datetime.now(UTC), allow=frozenset({("127.0.0.1", port)}))
        seconds = time.perf_counter() - started
        grown = vm_hwm_kib() - before
        engine.dispose()
    return {"seconds": round(seconds, 2), "peak_growth_mib": grown // 1024, "accepted": result.accepted,
            "error": result.error}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--poll", help="poll this one URL here and print the outcome as JSON (used internally)")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    if args.poll:
        print(json.dumps(poll_once(args.poll, args.port)))
        return 0
    server = HostileServer()
    port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    for case in CASES:
        child = subprocess.run([sys.executable, __file__, "--poll", f"http://127.0.0.1:{port}/{case}",
                                "--port", str(port)], capture_output=True, text=True, check=False)
        if child.returncode != 0:
            print(f"{case}: the child failed: {child.stderr.strip().splitlines()[-1:]}")
            continue
        found = json.loads(child.stdout.strip().splitlines()[-1])
        outcome = f"refused ({found['error']})" if found["error"] else f"read, {found['accepted']} item stored"
        print(f"{case:22} {len(server.cases[case][0]):>12,} bytes on the wire  {found['seconds']:6.2f} s  "
              f"+{found['peak_growth_mib']:5} MiB peak  {outcome}")
    server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
