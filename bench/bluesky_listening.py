"""What listening on Bluesky costs: searchPosts polls vs the Jetstream firehose. Run by hand.

    PYTHONPATH=. python bench/bluesky_listening.py local             # searchPosts polls against the emulator
    PYTHONPATH=. python bench/bluesky_listening.py jetstream 60      # needs the internet: 60 s of Jetstream
    BSKY_HANDLE=… BSKY_APP_PASSWORD=… PYTHONPATH=. python bench/bluesky_listening.py search "acme air"

`local` times one poll of two queries (sign-in, pages, getProfiles, storing) into a SQLite file.
`jetstream` counts the posts and bytes the public firehose sends (app.bsky.feed.post creates only) and how
many a keyword filter would keep. `search` times one real searchPosts page and its size.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path


def local() -> None:
    from sqlalchemy import create_engine

    from bot.crisis.plan import BlueskyAccount, BlueskySearch
    from bot.listening.bluesky import poll_bluesky
    from models import Base, make_session_factory, utcnow
    from tests.bluesky_server import FakeBluesky

    with FakeBluesky() as server, tempfile.TemporaryDirectory() as folder:
        server.add_account("bench.bsky.social", "pw")
        for i in range(500):
            server.add_post(f"u{i % 97}.bsky.social", f"acme air delayed again {i}", likes=i)
        url = f"sqlite:///{Path(folder) / 'bench.db'}"
        Base.metadata.create_all(create_engine(url))
        sessions = make_session_factory(create_engine(url))
        account = BlueskyAccount(handle="bench.bsky.social", password_env="X", pds=server.base_url)
        search = BlueskySearch(queries=["acme air", "delayed again"])
        for label in ("first poll (5 pages of 50 per query)", "second poll (resumes from the saved cursors)",
                      "third poll (the rest, then caught up)"):
            started = time.perf_counter()
            results = poll_bluesky(sessions, search, account, "pw", utcnow())
            elapsed = time.perf_counter() - started
            print(f"{label}: {elapsed * 1000:.0f} ms, {len(server.calls)} XRPC calls so far, "
                  f"stored {sum(r.accepted for r in results)}")


def jetstream(seconds: float, keyword: str = "acme") -> None:
    from websockets.sync.client import connect

    url = "wss://jetstream2.us-east.bsky.network/subscribe?wantedCollections=app.bsky.feed.post"
    posts = kept = wire = 0
    deadline = time.monotonic() + seconds
    with connect(url, max_size=None) as socket:
        while time.monotonic() < deadline:
            frame = socket.recv(timeout=10)
            wire += len(frame)
            event = json.loads(frame)
            record = (event.get("commit") or {}).get("record") or {}
            if event.get("kind") == "commit" and record.get("text") is not None:
                posts += 1
                kept += keyword in record["text"].lower()
    print(f"jetstream {seconds:.0f} s: {posts} posts ({posts / seconds:.0f}/s), {wire / 1e6:.1f} MB "
          f"({wire / seconds * 86400 / 1e9:.1f} GB/day), {kept} containing {keyword!r}")


def search(query: str) -> None:
    from atproto import Client

    client = Client()
    client.login(os.environ["BSKY_HANDLE"], os.environ["BSKY_APP_PASSWORD"])
    started = time.perf_counter()
    answer = client.app.bsky.feed.search_posts({"q": query, "sort": "latest", "limit": 50})
    elapsed = time.perf_counter() - started
    size = len(json.dumps(answer.model_dump(mode="json")))
    print(f"searchPosts {query!r}: {len(answer.posts)} posts, ~{size / 1e3:.0f} kB, {elapsed * 1000:.0f} ms")


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "local"
    if what == "jetstream":
        jetstream(float(sys.argv[2]) if len(sys.argv) > 2 else 60.0)
    elif what == "search":
        search(sys.argv[2] if len(sys.argv) > 2 else "acme air")
    else:
        local()
