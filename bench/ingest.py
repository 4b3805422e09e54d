"""Webhook throughput: POST /mentions in batches of 500 through `warroom serve`'s real HTTP stack.

    python bench/ingest.py                                   # SQLite file in a temp folder
    python bench/ingest.py --database-url postgresql://postgres@127.0.0.1:5432/test

Starts `warroom serve --no-scheduler` as a subprocess (waitress, Flask, our handler, the real
database), sends every batch from a few client threads with pre-encoded bodies, and prints
mentions stored per second. Target: ≥ 5,000 mentions/s into SQLite.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import create_engine, delete

from bot.infra.settings import normalise_database_url
from models import Mention

TOKEN = "bench-ingest-token"
WORDS = (
    "acme air",
    "flight",
    "delayed",
    "again",
    "thanks",
    "crew",
    "lost",
    "bag",
    "refund",
    "great",
    "terrible",
    "service",
    "hours",
    "waiting",
    "gate",
    "love",
    "never",
    "booking",
    "app",
    "down",
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def make_batches(run: str, batches: int, size: int) -> list[bytes]:
    rng = random.Random(7)
    start = datetime.now(UTC) - timedelta(hours=2)
    bodies = []
    for b in range(batches):
        items = []
        for i in range(size):
            n = b * size + i
            text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 20))) + f" #{n}"
            items.append(
                {
                    "platform": f"bench-{run}",
                    "id": str(n),
                    "text": text,
                    "created_at": (start + timedelta(seconds=n % 7200)).isoformat(),
                    "author": f"user{rng.randint(1, 5000)}",
                    "author_followers": rng.randint(0, 100_000),
                    "likes": rng.randint(0, 50),
                    "shares": rng.randint(0, 10),
                    "replies": rng.randint(0, 10),
                    "url": f"https://example.social/{n}",
                    "lang": "en",
                }
            )
        bodies.append(json.dumps({"mentions": items}).encode())
    return bodies


def wait_healthy(url: str, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"warroom serve exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit("warroom serve did not become healthy")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="default: a fresh SQLite file")
    parser.add_argument("--batches", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--clients", type=int, default=4, help="concurrent client connections")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="warroom-bench-"))
    url = args.database_url or f"sqlite:///{folder / 'bench.db'}"
    warroom = Path(sys.executable).with_name("warroom")
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "WARROOM_INGEST_TOKEN": TOKEN,
        "PORT": str(port),
        "SLACK_BOT_TOKEN": "xoxb-bench",
        "SLACK_SIGNING_SECRET": "bench",
        "SLACK_API_URL": "http://127.0.0.1:9/",
        "WARROOM_LOG_LEVEL": "WARNING",
    }
    env.pop("SLACK_APP_TOKEN", None)
    subprocess.run([str(warroom), "db", "upgrade"], env=env, check=True, capture_output=True, cwd=folder)
    run = uuid.uuid4().hex[:8]
    bodies = make_batches(run, args.batches, args.batch_size)
    server = subprocess.Popen(
        [str(warroom), "serve", "--no-scheduler", "--host", "127.0.0.1"], env=env, cwd=folder
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, server)
        headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        clients = [httpx.Client(base_url=base, timeout=60) for _ in range(args.clients)]
        clients[0].post("/mentions", content=make_batches("warmup" + run, 1, 50)[0], headers=headers)

        def send(index: int) -> int:
            response = clients[index % len(clients)].post("/mentions", content=bodies[index], headers=headers)
            response.raise_for_status()
            return int(response.json()["accepted"])

        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=args.clients) as pool:
            accepted = sum(pool.map(send, range(len(bodies))))
        elapsed = time.perf_counter() - started
        for client in clients:
            client.close()
    finally:
        server.terminate()
        server.wait(timeout=10)
    total = args.batches * args.batch_size
    backend = url.split(":", 1)[0]
    print(
        f"{backend}: {accepted:,}/{total:,} mentions accepted in {elapsed:.2f} s "
        f"= {accepted / elapsed:,.0f} mentions/s (batches of {args.batch_size}, {args.clients} clients)"
    )
    if args.database_url:
        engine = create_engine(normalise_database_url(url))
        with engine.begin() as connection:
            connection.execute(delete(Mention).where(Mention.platform.like(f"bench-%{run}")))
        engine.dispose()
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
