"""Ack latency of `warroom serve` under load, side by side with a bare Bolt app on the same stack.

Signed `/crisis open`, `/crisis status` (in an incident channel) and *Approve* clicks (on real drafts)
from `--clients` concurrent keep-alive clients for `--seconds`, against:

* `warroom serve --no-scheduler` (a subprocess) talking to an in-process Slack emulator, on SQLite
  (a fresh file) or on PostgreSQL (`--database-url`: a fresh database is created on that server,
  migrated, and dropped afterwards);
* `bench/bare_app.py` (a subprocess): the same Bolt + Flask + waitress stack with listeners that only ack;
* with `--durable`, also `bench/bare_app.py --commit` ("durable"): the same bare app committing each
  request as a row in the same database before its ack, the price of a durable ack without War Room.

Reports requests, throughput, p50/p95/p99 ack latency and errors per app, and the ratio.
Targets: p99 <= 100 ms and <= 1.3x the bare app that commits one row per request (`--durable`;
without it, the ratio is taken against the bare app that only acks).

By default the load is a closed loop: each client sends again as soon as it is answered, which
saturates both apps, so their latencies are those of their full queues and the ratio is close to the
ratio of their capacities. `--rate N` offers both apps the same N requests a second instead (an open
loop, latency counted from each request's scheduled time), which shows the latency the ack path adds
at a given load. The requests are built and signed before the load starts and sent from one asyncio
thread, so the load generator takes about a tenth of a core, not the CPU the servers need.

    python bench/ack.py --seconds 5
    python bench/ack.py --database-url postgresql://postgres@127.0.0.1:5432/postgres
    python bench/ack.py --rate 400
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass, field
from multiprocessing.managers import BaseManager
from pathlib import Path
from urllib.parse import urlencode

import httpx
from slack_sdk.signature import SignatureVerifier
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from bot.demo.slack_emulator import SlackEmulator
from bot.infra import database
from bot.infra.settings import normalise_database_url
from handlers.render.drafts import draft_ref
from models import Draft, Incident, Job, make_engine
from models.drafts import PENDING

ROOT = Path(__file__).resolve().parents[1]
SIGNING_SECRET = "bench-signing-secret"
BOT_TOKEN = "xoxb-bench-token"
LEAD = "UBENCHLEAD"
TEAM = "T0001"
KINDS = ("open", "status", "approve")
P99_TARGET_MS = 100.0
SLACK_NICENESS = 10
RATIO_TARGET = 1.3


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    if not values:
        return float("nan")
    index = min(len(values) - 1, max(0, int(round(fraction * len(values) + 0.5)) - 1))
    return values[index]


# ---- the requests Slack would send -----------------------------------------------------------------


class Requests:
    """Builds correctly signed Slack requests, as raw HTTP/1.1 bytes ready to write to a socket.

    Every request is unique (its own response URL and trigger id), so the replay guard accepts each
    once. Response URLs are minted by the emulator in bulk; trigger ids are our own (the emulator takes
    an id it never minted once, as Slack takes any id it issued).
    """

    def __init__(self, emulator: RemoteSlack, channel_id: str, draft_ids: list[int]) -> None:
        self.emulator = emulator
        self.channel_id = channel_id
        self.draft_ids = draft_ids
        self.verifier = SignatureVerifier(SIGNING_SECRET)
        self._urls: dict[str | None, list[str]] = {}
        self._triggers = itertools.count(1)

    def response_url(self, channel_id: str) -> str:
        urls = self._urls.setdefault(channel_id, [])
        if not urls:
            urls.extend(self.emulator.response_urls(channel_id, LEAD, 2000))
        return urls.pop()

    def trigger_id(self) -> str:
        return f"{int(time.time() * 1000)}.{next(self._triggers)}.bench"

    def signed(self, body: bytes) -> tuple[bytes, dict[str, str]]:
        stamp = str(int(time.time()))
        signature = self.verifier.generate_signature(timestamp=stamp, body=body)
        assert signature is not None
        return body, {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": signature,
                      "Content-Type": "application/x-www-form-urlencoded"}

    def command(self, text_: str, channel_id: str) -> tuple[bytes, dict[str, str]]:
        return self.signed(urlencode({
            "token": "verification", "team_id": TEAM, "team_domain": "bench", "channel_id": channel_id,
            "channel_name": "bench", "user_id": LEAD, "user_name": "lead", "command": "/crisis",
            "text": text_,
            "api_app_id": "A0001", "is_enterprise_install": "false",
            "response_url": self.response_url(channel_id),
            "trigger_id": self.trigger_id(),
        }).encode())

    def approve(self, draft_id: int) -> tuple[bytes, dict[str, str]]:
        payload = {
            "type": "block_actions", "api_app_id": "A0001", "token": "verification",
            "user": {"id": LEAD, "username": "lead", "name": "lead", "team_id": TEAM},
            "team": {"id": TEAM, "domain": "bench"}, "trigger_id": self.trigger_id(),
            "container": {"type": "message", "message_ts": "1700000000.000100", "channel_id": self.channel_id,
                          "is_ephemeral": False},
            "channel": {"id": self.channel_id, "name": "bench"},
            "message": {"type": "message", "ts": "1700000000.000100", "text": "draft", "blocks": []},
            "response_url": self.response_url(self.channel_id),
            "actions": [{"action_id": "draft_approve", "block_id": "draft_actions", "value": draft_ref(draft_id, 1),
                         "type": "button", "text": {"type": "plain_text", "text": "Approve"},
                         "action_ts": f"{time.time():.6f}"}],
            "state": {"values": {}},
        }
        return self.signed(urlencode({"payload": json.dumps(payload)}).encode())

    def make(self, kind: str, open_titles: str, chooser: random.Random) -> tuple[bytes, dict[str, str]]:
        if kind == "open":
            title = f"Bench crisis {chooser.getrandbits(40):010x}" if open_titles == "unique" else "Bench crisis"
            return self.command(f"open sev3 {title}", "C0GENERAL1")
        if kind == "status":
            return self.command("status", self.channel_id)
        return self.approve(chooser.choice(self.draft_ids))

    def raw(self, kind: str, open_titles: str, chooser: random.Random) -> bytes:
        body, headers = self.make(kind, open_titles, chooser)
        head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        return (f"POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1\r\n{head}"
                f"Content-Length: {len(body)}\r\n\r\n").encode() + body

    def pool(self, size: int, mix: Sequence[str], open_titles: str, seed: int) -> list[tuple[str, bytes]]:
        """`size` signed requests of kinds drawn uniformly from `mix`, built before the load starts."""
        chooser = random.Random(seed)
        kinds = [chooser.choice(mix) for _ in range(size)]
        return [(kind, self.raw(kind, open_titles, chooser)) for kind in kinds]


# ---- load ------------------------------------------------------------------------------------------


@dataclass
class Result:
    name: str
    seconds: float
    latencies: dict[str, list[float]] = field(default_factory=lambda: {kind: [] for kind in KINDS})
    errors: list[str] = field(default_factory=list)
    # (seconds since the load started, ms, kind) of every request: shows whether slow acks cluster.
    timeline: list[tuple[float, float, str]] = field(default_factory=list)
    pool_ran_out: bool = False

    @property
    def all_ms(self) -> list[float]:
        return sorted(ms for values in self.latencies.values() for ms in values)

    def summary(self) -> dict[str, float]:
        values = self.all_ms
        return {
            "requests": len(values) + len(self.errors),
            "throughput": len(values) / self.seconds,
            "p50": percentile(values, 0.50), "p95": percentile(values, 0.95), "p99": percentile(values, 0.99),
            "max": values[-1] if values else float("nan"),
            "mean": statistics.fmean(values) if values else float("nan"),
            "errors": len(self.errors),
        }


class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection that sends a request and reads back one response at a time.

    The load generator is not what is measured, so it must be cheap: the requests are pre-built bytes,
    and a response is parsed only as far as its status and Content-Length.
    """

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0 or self.waiter is None:
            return
        head = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
        length = next((int(line.split(":", 1)[1]) for line in head[1:]
                       if line.lower().startswith("content-length:")), None)
        if length is None:
            self._finish(ConnectionError("response without Content-Length"))
            return
        if len(self.buffer) < end + 4 + length:
            return
        body = bytes(self.buffer[end + 4:end + 4 + length])
        del self.buffer[:end + 4 + length]
        self._finish((int(head[0].split(" ", 2)[1]), body))

    def connection_lost(self, exc: Exception | None) -> None:
        self._finish(exc or ConnectionError("connection closed"))

    def _finish(self, outcome: tuple[int, bytes] | BaseException) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is None or waiter.done():
            return
        if isinstance(outcome, BaseException):
            waiter.set_exception(outcome)
        else:
            waiter.set_result(outcome)

    async def exchange(self, raw: bytes) -> tuple[int, bytes]:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(raw)
        return await asyncio.wait_for(self.waiter, 10.0)


def run_load(name: str, port: int, pool: list[tuple[str, bytes]], *, clients: int, seconds: float,
             rate: float | None = None) -> Result:
    """`clients` concurrent keep-alive connections until the deadline; one asyncio thread drives them all.

    Without `rate`, a closed loop: each client sends its next request as soon as the previous one is
    answered, so the app is saturated and the latency is that of a full queue (50 people clicking
    without pause). With `rate`, an open loop at that many requests a second in all, spread evenly over
    the clients: each request has a scheduled send time, and its latency is counted from that time, so
    a server that falls behind is charged for the wait (no coordinated omission)."""
    result = Result(name, seconds)
    requests = iter(pool)
    interval = clients / rate if rate else 0.0

    async def client(connection: _Connection, index: int, started: float) -> None:
        deadline = started + seconds
        scheduled = started + interval * index / clients
        while True:
            if rate:
                if scheduled >= deadline:
                    return
                delay = scheduled - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            elif time.monotonic() >= deadline:
                return
            item = next(requests, None)
            if item is None:
                result.pool_ran_out = True
                return
            kind, raw = item
            began = scheduled if rate else time.monotonic()
            scheduled += interval
            try:
                status, body = await connection.exchange(raw)
            except OSError as exc:  # TimeoutError is an OSError
                result.errors.append(f"{kind}: {type(exc).__name__} {exc}")
                return
            elapsed = (time.monotonic() - began) * 1000
            if status == 200 and b"was not run" in body:
                # Acked in time, but the database could not take the job: refused, not accepted.
                result.errors.append(f"{kind}: refused in the ack (database busy)")
            elif status == 200:
                result.latencies[kind].append(elapsed)
                result.timeline.append((began - started, elapsed, kind))
            else:
                result.errors.append(f"{kind}: HTTP {status} {body[:80]!r}")

    async def load() -> None:
        loop = asyncio.get_running_loop()
        connections = []
        for _ in range(clients):
            _transport, connection = await loop.create_connection(_Connection, "127.0.0.1", port)
            connections.append(connection)
        started = time.monotonic()
        await asyncio.gather(*(client(connection, index, started) for index, connection in enumerate(connections)))
        for connection in connections:
            if connection.transport is not None:
                connection.transport.close()

    # A full collection of the client's heap would pause its clock and be counted as server latency.
    gc.collect()
    gc.disable()
    try:
        asyncio.run(load())
    finally:
        gc.enable()
    return result


# ---- the servers -----------------------------------------------------------------------------------


@contextmanager
def process(name: str, argv: list[str], env: dict[str, str], cwd: Path, log_path: Path,
            ready_url: str) -> Iterator[subprocess.Popen[bytes]]:
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=log_file, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"{name} exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                if httpx.get(ready_url, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"{name} did not start:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.1)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def bench_database(server_url: str | None, folder: Path) -> Iterator[str]:
    """A fresh, migrated database: a SQLite file, or a new database on the given PostgreSQL server."""
    if server_url is None:
        url = f"sqlite:///{folder / 'bench.db'}"
        database.upgrade(url)
        yield url
        return
    base = make_url(normalise_database_url(server_url))
    name = f"warroom_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = base.set(database=name).render_as_string(hide_password=False)
    try:
        database.upgrade(url)
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def wait_for(check: Callable[[], object], what: str, timeout: float = 30.0) -> object:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise SystemExit(f"bench setup: timed out waiting for {what}")
        time.sleep(0.05)


def set_up_incident(url: str, requests: Requests, database_url: str, drafts: int) -> tuple[str, list[int]]:
    """Open one incident and ask for `drafts` drafts in it, through the app itself."""
    engine = make_engine(database_url)
    try:
        with httpx.Client(base_url=url, timeout=10) as http:
            body, headers = requests.command("open sev2 Benchmark war room", "C0GENERAL1")
            assert http.post("/slack/events", content=body, headers=headers).status_code == 200

            def opened() -> str | None:
                with engine.connect() as connection:
                    query = select(Incident.channel_id).where(Incident.status == "open")
                    return connection.execute(query).scalar()

            channel_id = str(wait_for(opened, "the incident to open"))
            for number in range(drafts):
                body, headers = requests.command(f"draft x Where is my bag? ({number})", channel_id)
                assert http.post("/slack/events", content=body, headers=headers).status_code == 200

            def pending() -> list[int]:
                with engine.connect() as connection:
                    ids = list(connection.execute(select(Draft.id).where(Draft.status == PENDING)).scalars())
                return ids if len(ids) >= drafts else []

            draft_ids = list(wait_for(pending, f"{drafts} drafts"))  # type: ignore[call-overload]
    finally:
        engine.dispose()
    return channel_id, draft_ids


class RemoteSlack(SlackEmulator):
    """The emulator as it is driven across a process boundary (a manager proxy exposes methods only)."""

    def boot(self) -> None:
        self.start()  # start() returns the emulator itself, which cannot cross the process boundary

    def get_api_url(self) -> str:
        return self.api_url

    def get_pid(self) -> int:
        return os.getpid()

    def activity(self) -> int:
        return len(self.calls) + len(self.responses)

    def response_urls(self, channel_id: str, user_id: str, count: int) -> list[str]:
        """Mint `count` response URLs in one call across the process boundary."""
        return [self.response_url(channel_id, user_id) for _ in range(count)]


class SlackProcess(BaseManager):
    """Runs the emulator in a process of its own: Slack's servers are not on the bot's machine, so
    they must not share the load generator's interpreter lock, and they get the CPU after the bot."""


SlackProcess.register("RemoteSlack", RemoteSlack, exposed=(
    "boot", "stop", "get_api_url", "get_pid", "activity", "response_urls", "add_user", "clear_calls",
))


def _lower_priority() -> None:
    os.nice(SLACK_NICENESS)


@contextmanager
def remote_slack() -> Iterator[RemoteSlack]:
    manager = SlackProcess()
    manager.start(initializer=_lower_priority)
    try:
        emulator = manager.RemoteSlack()  # type: ignore[attr-defined]
        emulator.boot()
        yield emulator
        emulator.stop()
    finally:
        manager.shutdown()


def drain_seconds(emulator: RemoteSlack, quiet: float = 0.5, limit: float = 120.0) -> float:
    """How long the slow work after the acks kept calling Slack once the load stopped."""
    began = time.monotonic()
    seen = -1
    while time.monotonic() - began < limit:
        now = emulator.activity()
        if now == seen:
            return max(0.0, time.monotonic() - began - quiet)
        seen = now
        time.sleep(quiet)
    return limit


def drain_queue(database_url: str, limit: float) -> float:
    """How long the worker took, after the load stopped, to finish every job the acks queued."""
    engine = make_engine(database_url)
    began = time.monotonic()
    try:
        while time.monotonic() - began < limit:
            with engine.connect() as connection:
                pending = connection.execute(select(func.count()).select_from(Job)
                                             .where(Job.status.in_(["queued", "running"]))).scalar_one()
            if not pending:
                break
            time.sleep(1.0)
    finally:
        engine.dispose()
    return time.monotonic() - began


# ---- CPU accounting (Linux /proc) -------------------------------------------------------------------


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with suppress(OSError):
            found += [int(child) for child in (task / "children").read_text().split()]
    return found


def postgres_pids() -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if stat.read_text().split(" ", 2)[1] == "(postgres)":
                found.append(int(stat.parent.name))
        except OSError:
            pass
    return found


def cpu_seconds(groups: dict[str, list[int]]) -> dict[str, float]:
    """User + system CPU seconds so far of each group of processes (and their threads)."""
    tick = os.sysconf("SC_CLK_TCK")
    totals = {}
    for what, pids in groups.items():
        total = 0
        for pid in pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])
        totals[what] = total / tick
    return totals


# ---- report ----------------------------------------------------------------------------------------


def print_by_second(results: list[Result]) -> None:
    """The slowest ack in each second of each load: a stall (a pause of the server, a burst on the
    machine) shows as one second, a queue that grows as a rising run."""
    for result in results:
        by_second: dict[int, float] = {}
        for at, ms, _kind in result.timeline:
            by_second[int(at)] = max(ms, by_second.get(int(at), 0.0))
        print(f"  {result.name} slowest ms in each second: "
              + " ".join(f"{by_second[second]:.0f}" for second in sorted(by_second)))


def report(results: list[Result], backend: str, drains: dict[str, float], server_errors: int,
           load: str) -> bool:
    print(f"\nAck latency — {backend}; {results[0].seconds:.0f} s per app; {load}\n")
    print(f"{'app':<10} {'requests':>9} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8}"
          f" {'errors':>7}")
    summaries = {}
    for result in results:
        row = summaries[result.name] = result.summary()
        print(f"{result.name:<10} {row['requests']:>9.0f} {row['throughput']:>8.1f} {row['p50']:>8.1f} "
              f"{row['p95']:>8.1f} {row['p99']:>8.1f} {row['max']:>8.1f} {row['errors']:>7.0f}")
    war, bare = summaries["warroom"], summaries["bare"]
    durable = summaries.get("durable")
    if durable is not None and bare["p99"]:
        print(f"\np99 ratio durable/bare: {durable['p99'] / bare['p99']:.2f}x (a bare app that commits "
              "each request before its ack: what durability alone costs)")
    print("\nper request kind (warroom): " + ", ".join(
        f"{kind} n={len(values)} p99={percentile(sorted(values), 0.99):.1f} ms"
        for kind, values in next(r for r in results if r.name == "warroom").latencies.items()))
    # The target compares War Room with a bare Bolt app that commits one row per request (--durable);
    # without that app in the run, the bare app that only acks stands in, a stricter baseline.
    baseline, baseline_name = (durable, "durable") if durable is not None else (bare, "bare")
    ratio = war["p99"] / baseline["p99"] if baseline["p99"] else float("inf")
    print(f"\np99 ratio warroom/{baseline_name}: {ratio:.2f}x (target <= {RATIO_TARGET}x); "
          f"p99 {war['p99']:.1f} ms (target <= {P99_TARGET_MS:.0f} ms)")
    print(f"the worker finished the queued work {drains.get('warroom', 0):.1f} s after the load stopped; "
          f"errors in the server log: {server_errors}")
    for result in results:
        slowest = sorted(result.timeline, key=lambda entry: entry[1])[-5:]
        print(f"  {result.name} slowest: "
              + ", ".join(f"{ms:.0f} ms {kind} at {at:.1f} s" for at, ms, kind in slowest))
    for result in results:
        for error in sorted(set(result.errors))[:5]:
            print(f"  {result.name} error: {error}")
    ok = war["p99"] <= P99_TARGET_MS and ratio <= RATIO_TARGET and war["errors"] == 0
    print("RESULT:", "meets the targets" if ok else "MISSES the targets")
    return ok


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Ack latency of warroom serve vs a bare Bolt app.")
    parser.add_argument("--seconds", type=float, default=30.0, help="load per app (default 30)")
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients (default 50)")
    parser.add_argument("--threads", type=int, default=16, help="waitress threads for both apps (default 16)")
    parser.add_argument("--database-url", help="a PostgreSQL server URL; a fresh database is made on it "
                        "(default: a fresh SQLite file)")
    parser.add_argument("--drain-limit", type=float, default=900.0,
                        help="seconds to wait for the worker to finish the queued jobs before counting (default 900)")
    parser.add_argument("--rate", type=float,
                        help="offer this many requests a second in all (open loop, the same for both apps) "
                        "instead of saturating them (default: closed loop, each client sends as soon as answered)")
    parser.add_argument("--worker-threads", type=int,
                        help="passed to warroom serve (default: its own); 0 leaves the queued work undone, "
                        "to see the ack path alone")
    parser.add_argument("--pool-rate", type=float, default=2500.0,
                        help="requests built ahead per second of load (default 2500; "
                        "a run that uses them all up stops early and says so)")
    parser.add_argument("--drafts", type=int, default=5, help="drafts to click Approve on (default 5)")
    parser.add_argument("--open-titles", choices=["unique", "same"], default="unique",
                        help="unique: every open creates an incident; "
                        "same: repeats are answered 'already open'")
    parser.add_argument("--mix", default="open,status,approve",
                        help="comma-separated request kinds, drawn uniformly (default open,status,approve)")
    parser.add_argument("--by-second", action="store_true", help="also print the slowest ack of every second")
    parser.add_argument("--only", choices=["warroom", "bare", "durable"], help="run one app only")
    parser.add_argument("--durable", action="store_true",
                        help="also load the bare app committing each request before its ack (bare_app.py --commit)")
    parser.add_argument("--warroom-command", default=str(Path(sys.executable).with_name("warroom")),
                        help="the warroom executable (to try a patched server; default: this venv's)")
    args = parser.parse_args(argv)
    args.durable = args.durable or args.only == "durable"
    mix = [kind.strip() for kind in args.mix.split(",") if kind.strip()]
    if not mix or set(mix) - set(KINDS):
        parser.error(f"--mix takes {', '.join(KINDS)}")

    with tempfile.TemporaryDirectory(prefix="warroom-bench-") as tmp, remote_slack() as emulator:
        folder = Path(tmp)
        emulator.add_user(LEAD, "lead", real_name="Bench Lead")
        emulator_pid = emulator.get_pid()
        with bench_database(args.database_url, folder) as database_url:
            backend = "PostgreSQL" if database_url.startswith("postgresql") else "SQLite"
            env = {key: value for key, value in os.environ.items()
                   if not key.startswith(("SLACK_", "WARROOM_", "DATABASE_URL", "OPENAI_"))}
            env.update(SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_BOT_TOKEN=BOT_TOKEN,
                       SLACK_API_URL=emulator.get_api_url(), DATABASE_URL=database_url, WARROOM_LOG_LEVEL="WARNING")
            war_port, bare_port, durable_port = free_port(), free_port(), free_port()
            results: list[Result] = []
            drains: dict[str, float] = {}
            server_errors = 0
            warroom_bin = args.warroom_command
            with process("warroom serve", [warroom_bin, "serve", "--no-scheduler", "--host", "127.0.0.1",
                                           "--threads", str(args.threads),
                                           *(["--worker-threads", str(args.worker_threads)]
                                             if args.worker_threads is not None else [])],
                         {**env, "PORT": str(war_port)}, folder, folder / "warroom.log",
                         f"http://127.0.0.1:{war_port}/healthz") as war_proc, \
                 process("bare app", [sys.executable, str(ROOT / "bench" / "bare_app.py"),
                                      "--port", str(bare_port), "--threads", str(args.threads)],
                         {**env, "PYTHONPATH": str(ROOT)}, folder, folder / "bare.log",
                         f"http://127.0.0.1:{bare_port}/healthz") as bare_proc, \
                 (process("durable app", [sys.executable, str(ROOT / "bench" / "bare_app.py"), "--commit",
                                          "--port", str(durable_port), "--threads", str(args.threads)],
                          {**env, "PYTHONPATH": str(ROOT)}, folder, folder / "durable.log",
                          f"http://127.0.0.1:{durable_port}/healthz")
                  if args.durable else nullcontext()) as durable_proc:
                war_url = f"http://127.0.0.1:{war_port}"
                requests = Requests(emulator, "", [])
                setup_worker = None
                if args.worker_threads == 0:  # the set-up still needs its incident and drafts made
                    setup_worker = subprocess.Popen([warroom_bin, "worker"], env=env, cwd=folder,
                                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                channel_id, draft_ids = set_up_incident(war_url, requests, database_url, args.drafts)
                if setup_worker is not None:
                    setup_worker.terminate()
                    setup_worker.wait()
                requests = Requests(emulator, channel_id, draft_ids)
                drain_seconds(emulator)
                emulator.clear_calls()
                servers = {"bare": (bare_proc, bare_port), "durable": (durable_proc, durable_port),
                           "warroom": (war_proc, war_port)}
                for name, (server, port) in servers.items():
                    if server is None:
                        continue
                    if args.only and name != args.only:
                        continue
                    size = int(args.seconds * (args.rate * 1.05 + args.clients if args.rate else args.pool_rate))
                    pool = requests.pool(size, mix, args.open_titles, seed=len(results))
                    print(f"loading {name} for {args.seconds:.0f} s with {args.clients} clients…", flush=True)
                    watched = {"client (this bench)": [os.getpid()],
                               "server": [server.pid],
                               "worker child": children(war_proc.pid),
                               "database server": postgres_pids(), "Slack emulator": [emulator_pid]}
                    before, began = cpu_seconds(watched), time.monotonic()
                    results.append(run_load(name, port, pool, clients=args.clients, seconds=args.seconds,
                                            rate=args.rate))
                    del pool
                    if results[-1].pool_ran_out:
                        print(f"  the {len(results[-1].all_ms)} pre-built requests ran out before the deadline: "
                              "raise --pool-rate", flush=True)
                    used, elapsed = cpu_seconds(watched), time.monotonic() - began
                    print("  CPU during the load (100% = one core): " + ", ".join(
                        f"{what} {100 * (used[what] - before[what]) / elapsed:.0f}%" for what in watched), flush=True)
                    if name in ("bare", "durable"):
                        drains[name] = drain_seconds(emulator)
                    elif args.worker_threads != 0:
                        drains[name] = drain_queue(database_url, args.drain_limit)
                engine = make_engine(database_url)
                with engine.connect() as connection:
                    opened = connection.execute(select(func.count()).select_from(Incident)
                                                .where(Incident.status == "open")).scalar_one()
                engine.dispose()
                sent = len(next((r for r in results if r.name == "warroom"), Result("", 1)).latencies["open"])
                print(f"work done after the acks: {opened - 1} of {sent} acknowledged opens are incidents")
                engine = make_engine(database_url)
                with engine.connect() as connection:
                    states = dict(connection.execute(select(Job.status, func.count()).group_by(Job.status)).all())
                    stuck = connection.execute(select(Incident.status, Incident.open_error)
                                               .where(Incident.status != "open")).all()
                engine.dispose()
                print(f"job queue when counted: {states}")
                for status, error in stuck[:5]:
                    print(f"  not open: {status}: {error}")
                log_lines = (folder / "warroom.log").read_text(errors="replace").splitlines()
                server_errors = sum(1 for line in log_lines if " ERROR " in line)
            if args.by_second:
                print_by_second(results)
            if len(results) < 2:
                for result in results:
                    print(result.name, {key: round(value, 1) for key, value in result.summary().items()})
                return 0
            load = (f"open loop, {args.rate:.0f} requests/s offered by {args.clients} clients" if args.rate
                    else f"closed loop, {args.clients} clients sending as soon as answered")
            return 0 if report(results, backend, drains, server_errors, load) else 1


if __name__ == "__main__":
    sys.exit(main())
