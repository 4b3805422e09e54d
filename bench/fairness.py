"""Fairness: a flood of cheap commands must not starve an open.

`--clients` keep-alive clients send signed `/crisis status` (in an incident channel) as fast as they
are answered for `--seconds`, against `warroom serve` (with its worker child) talking to the Slack
emulator in a process of its own; halfway through, one `/crisis open` is sent, and the bench measures
how long until that incident's brief is pinned (the open's last step). Target: within 3 s.

    python bench/fairness.py [--seconds 30] [--clients 50] [--database-url postgresql://…]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import httpx
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.ack import (  # noqa: E402
    BOT_TOKEN,
    LEAD,
    SIGNING_SECRET,
    Requests,
    bench_database,
    free_port,
    process,
    remote_slack,
    run_load,
    wait_for,
)
from models import Incident, make_engine  # noqa: E402

PROBE_TITLE = "Fairness probe"


def open_room(url: str, requests: Requests, database_url: str) -> str:
    """Open the incident whose channel the flood of /crisis status is sent in; its channel id."""
    body, headers = requests.command("open sev2 Benchmark war room", "C0GENERAL1")
    assert httpx.post(f"{url}/slack/events", content=body, headers=headers, timeout=10).status_code == 200
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            query = select(Incident.channel_id).where(Incident.status == "open")
            return str(wait_for(lambda: connection.execute(query).scalar() or connection.rollback(),
                                "the incident to open"))
    finally:
        engine.dispose()


def pinned_at(database_url: str) -> float | None:
    """When (monotonic) the probe incident's brief was seen pinned, polled every 20 ms."""
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            # An incident is `open` once its last step (the brief pinned) is done.
            query = select(Incident.id).where(Incident.title == PROBE_TITLE, Incident.status == "open")
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                if connection.execute(query).first() is not None:
                    return time.monotonic()
                connection.rollback()
                time.sleep(0.02)
    finally:
        engine.dispose()
    return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--database-url", help="a PostgreSQL server URL (default: a fresh SQLite file)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="warroom-fairness-") as tmp, remote_slack() as emulator:
        folder = Path(tmp)
        emulator.add_user(LEAD, "lead", real_name="Bench Lead")
        with bench_database(args.database_url, folder) as database_url:
            env = {key: value for key, value in os.environ.items()
                   if not key.startswith(("SLACK_", "WARROOM_", "DATABASE_URL", "OPENAI_"))}
            env.update(SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_BOT_TOKEN=BOT_TOKEN,
                       SLACK_API_URL=emulator.get_api_url(), DATABASE_URL=database_url, WARROOM_LOG_LEVEL="WARNING")
            port = free_port()
            warroom = str(Path(sys.executable).with_name("warroom"))
            with process("warroom serve", [warroom, "serve", "--no-scheduler", "--host", "127.0.0.1"],
                         {**env, "PORT": str(port)}, folder, folder / "warroom.log",
                         f"http://127.0.0.1:{port}/healthz"):
                url = f"http://127.0.0.1:{port}"
                channel_id = open_room(url, Requests(emulator, "", []), database_url)
                requests = Requests(emulator, channel_id, [])
                pool = requests.pool(int(args.seconds * 3000), ["status"], "unique", seed=1)
                probe_body, probe_headers = requests.command(f"open sev2 {PROBE_TITLE}", "C0GENERAL1")
                outcome: dict[str, float | None] = {}

                def probe() -> None:
                    time.sleep(args.seconds / 2)
                    sent = time.monotonic()
                    answer = httpx.post(f"{url}/slack/events", content=probe_body, headers=probe_headers, timeout=10)
                    outcome["ack"] = time.monotonic() - sent
                    outcome["status"] = answer.status_code
                    seen = pinned_at(database_url)
                    outcome["pinned"] = None if seen is None else seen - sent

                prober = threading.Thread(target=probe)
                prober.start()
                print(f"flooding /crisis status from {args.clients} clients for {args.seconds:.0f} s; "
                      "one /crisis open halfway…", flush=True)
                result = run_load("warroom", port, pool, clients=args.clients, seconds=args.seconds)
                prober.join()
    statuses = result.latencies["status"]
    backend = "PostgreSQL" if args.database_url else "SQLite"
    print(f"{backend}: {len(statuses):,} /crisis status answered ({len(statuses) / args.seconds:,.0f}/s), "
          f"p50 {statistics.median(statuses):.1f} ms, errors {len(result.errors)}")
    pinned = outcome.get("pinned")
    acked_ms = 1000 * (outcome.get("ack") or 0)
    print(f"/crisis open sent halfway: acked in {acked_ms:.0f} ms (HTTP {outcome.get('status')}), "
          f"brief pinned {'never' if pinned is None else f'{pinned:.2f} s'} after it was sent "
          f"(target 3 s: {'met' if pinned is not None and pinned <= 3 else 'MISSED'})")
    return 0 if pinned is not None and pinned <= 3 else 1


if __name__ == "__main__":
    raise SystemExit(main())
