"""Ack latency of `warroom serve` under load, side by side with a bare Bolt app on the same stack.

Signed `/crisis open`, `/crisis status` (in an incident channel) and *Approve* clicks (on real drafts)
from `--clients` concurrent keep-alive clients for `--seconds`, against:

* `warroom serve --no-scheduler` (a subprocess) talking to an in-process Slack emulator, on SQLite
  (a fresh file) or on PostgreSQL (`--database-url`: a fresh database is created on that server,
  migrated, and dropped afterwards);
* `bench/bare_app.py` (a subprocess): the same Bolt + Flask + waitress stack with listeners that only ack.

Reports requests, throughput, p50/p95/p99 ack latency and errors per app, and the ratio.
Targets: p99 <= 100 ms and <= 1.3x the bare app.

    python bench/ack.py --seconds 5
    python bench/ack.py --database-url postgresql://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from multiprocessing.managers import BaseManager
from pathlib import Path
from urllib.parse import urlencode

import httpx
from slack_sdk.signature import SignatureVerifier
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from bot import database
from bot.settings import normalise_database_url
from bot.slack_emulator import SlackEmulator
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
    """Builds correctly signed Slack requests; response URLs and trigger ids are minted by the emulator."""

    def __init__(self, emulator: RemoteSlack, channel_id: str, draft_ids: list[int]) -> None:
        self.emulator = emulator
        self.channel_id = channel_id
        self.draft_ids = draft_ids
        self.verifier = SignatureVerifier(SIGNING_SECRET)

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
            "response_url": self.emulator.response_url(channel_id, LEAD),
            "trigger_id": self.emulator.trigger_id(),
        }).encode())

    def approve(self) -> tuple[bytes, dict[str, str]]:
        draft_id = random.choice(self.draft_ids)
        payload = {
            "type": "block_actions", "api_app_id": "A0001", "token": "verification",
            "user": {"id": LEAD, "username": "lead", "name": "lead", "team_id": TEAM},
            "team": {"id": TEAM, "domain": "bench"}, "trigger_id": self.emulator.trigger_id(),
            "container": {"type": "message", "message_ts": "1700000000.000100", "channel_id": self.channel_id,
                          "is_ephemeral": False},
            "channel": {"id": self.channel_id, "name": "bench"},
            "message": {"type": "message", "ts": "1700000000.000100", "text": "draft", "blocks": []},
            "response_url": self.emulator.response_url(self.channel_id, LEAD),
            "actions": [{"action_id": "draft_approve", "block_id": "draft_actions", "value": str(draft_id),
                         "type": "button", "text": {"type": "plain_text", "text": "Approve"},
                         "action_ts": f"{time.time():.6f}"}],
            "state": {"values": {}},
        }
        return self.signed(urlencode({"payload": json.dumps(payload)}).encode())

    def make(self, kind: str, open_titles: str) -> tuple[bytes, dict[str, str]]:
        if kind == "open":
            title = f"Bench crisis {uuid.uuid4().hex[:8]}" if open_titles == "unique" else "Bench crisis"
            return self.command(f"open sev3 {title}", "C0GENERAL1")
        if kind == "status":
            return self.command("status", self.channel_id)
        return self.approve()


# ---- load ------------------------------------------------------------------------------------------


@dataclass
class Result:
    name: str
    seconds: float
    latencies: dict[str, list[float]] = field(default_factory=lambda: {kind: [] for kind in KINDS})
    errors: list[str] = field(default_factory=list)
    # (seconds since the load started, ms, kind) of every request: shows whether slow acks cluster.
    timeline: list[tuple[float, float, str]] = field(default_factory=list)

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


def run_load(name: str, url: str, requests: Requests, *, clients: int, seconds: float, open_titles: str,
             mix: Sequence[str]) -> Result:
    """`clients` threads, each with its own keep-alive connection, sending until the deadline."""
    result = Result(name, seconds)
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)
    deadline = [0.0]

    def client(seed: int) -> None:
        chooser = random.Random(seed)
        latencies: dict[str, list[float]] = {kind: [] for kind in KINDS}
        errors: list[str] = []
        timeline: list[tuple[float, float, str]] = []
        with httpx.Client(base_url=url, timeout=10.0) as http:
            start.wait()
            while time.monotonic() < deadline[0]:
                kind = chooser.choice(mix)
                body, headers = requests.make(kind, open_titles)
                began = time.perf_counter()
                try:
                    response = http.post("/slack/events", content=body, headers=headers)
                    elapsed = (time.perf_counter() - began) * 1000
                    if response.status_code == 200 and b"was not run" in response.content:
                        # Acked in time, but the database could not take the job: refused, not accepted.
                        errors.append(f"{kind}: refused in the ack (database busy)")
                    elif response.status_code == 200:
                        latencies[kind].append(elapsed)
                        timeline.append((time.monotonic() - deadline[0] + seconds, elapsed, kind))
                    else:
                        errors.append(f"{kind}: HTTP {response.status_code} {response.text[:80]}")
                except httpx.HTTPError as exc:
                    errors.append(f"{kind}: {type(exc).__name__}")
        with lock:
            for kind, values in latencies.items():
                result.latencies[kind].extend(values)
            result.errors.extend(errors)
            result.timeline.extend(timeline)

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(clients)]
    for thread in threads:
        thread.start()
    # A full collection of the clients' heap would pause their clocks and be counted as server latency.
    # Collect now, not during the load.
    gc.collect()
    gc.disable()
    try:
        deadline[0] = time.monotonic() + seconds
        start.wait()
        for thread in threads:
            thread.join(seconds + 30)
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


class SlackProcess(BaseManager):
    """Runs the emulator in a process of its own: Slack's servers are not on the bot's machine, so
    they must not share the load generator's interpreter lock, and they get the CPU after the bot."""


SlackProcess.register("RemoteSlack", RemoteSlack, exposed=(
    "boot", "stop", "get_api_url", "get_pid", "activity", "response_url", "trigger_id", "add_user", "clear_calls",
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


def report(results: list[Result], backend: str, drains: dict[str, float], server_errors: int) -> bool:
    print(f"\nAck latency — {backend}; {results[0].seconds:.0f} s per app\n")
    print(f"{'app':<10} {'requests':>9} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8}"
          f" {'errors':>7}")
    summaries = {}
    for result in results:
        row = summaries[result.name] = result.summary()
        print(f"{result.name:<10} {row['requests']:>9.0f} {row['throughput']:>8.1f} {row['p50']:>8.1f} "
              f"{row['p95']:>8.1f} {row['p99']:>8.1f} {row['max']:>8.1f} {row['errors']:>7.0f}")
    war, bare = summaries["warroom"], summaries["bare"]
    print("\nper request kind (warroom): " + ", ".join(
        f"{kind} n={len(values)} p99={percentile(sorted(values), 0.99):.1f} ms"
        for kind, values in next(r for r in results if r.name == "warroom").latencies.items()))
    ratio = war["p99"] / bare["p99"] if bare["p99"] else float("inf")
    print(f"\np99 ratio warroom/bare: {ratio:.2f}x (target <= {RATIO_TARGET}x); "
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
    parser.add_argument("--drafts", type=int, default=5, help="drafts to click Approve on (default 5)")
    parser.add_argument("--open-titles", choices=["unique", "same"], default="unique",
                        help="unique: every open creates an incident; "
                        "same: repeats are answered 'already open'")
    parser.add_argument("--mix", default="open,status,approve",
                        help="comma-separated request kinds, drawn uniformly (default open,status,approve)")
    parser.add_argument("--only", choices=["warroom", "bare"], help="run one app only")
    parser.add_argument("--warroom-command", default=str(Path(sys.executable).with_name("warroom")),
                        help="the warroom executable (to try a patched server; default: this venv's)")
    args = parser.parse_args(argv)
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
            war_port, bare_port = free_port(), free_port()
            results: list[Result] = []
            drains: dict[str, float] = {}
            server_errors = 0
            warroom_bin = args.warroom_command
            with process("warroom serve", [warroom_bin, "serve", "--no-scheduler", "--host", "127.0.0.1",
                                           "--threads", str(args.threads)],
                         {**env, "PORT": str(war_port)}, folder, folder / "warroom.log",
                         f"http://127.0.0.1:{war_port}/healthz") as war_proc, \
                 process("bare app", [sys.executable, str(ROOT / "bench" / "bare_app.py"),
                                      "--port", str(bare_port), "--threads", str(args.threads)],
                         {**env, "PYTHONPATH": str(ROOT)}, folder, folder / "bare.log",
                         f"http://127.0.0.1:{bare_port}/healthz") as bare_proc:
                war_url, bare_url = f"http://127.0.0.1:{war_port}", f"http://127.0.0.1:{bare_port}"
                requests = Requests(emulator, "", [])
                channel_id, draft_ids = set_up_incident(war_url, requests, database_url, args.drafts)
                requests = Requests(emulator, channel_id, draft_ids)
                drain_seconds(emulator)
                emulator.clear_calls()
                for name, url in (("bare", bare_url), ("warroom", war_url)):
                    if args.only and name != args.only:
                        continue
                    print(f"loading {name} for {args.seconds:.0f} s with {args.clients} clients…", flush=True)
                    watched = {"client (this bench)": [os.getpid()],
                               "server": [(war_proc if name == "warroom" else bare_proc).pid],
                               "worker child": children(war_proc.pid),
                               "database server": postgres_pids(), "Slack emulator": [emulator_pid]}
                    before, began = cpu_seconds(watched), time.monotonic()
                    results.append(run_load(name, url, requests, clients=args.clients, seconds=args.seconds,
                                            open_titles=args.open_titles, mix=mix))
                    used, elapsed = cpu_seconds(watched), time.monotonic() - began
                    print("  CPU during the load (100% = one core): " + ", ".join(
                        f"{what} {100 * (used[what] - before[what]) / elapsed:.0f}%" for what in watched), flush=True)
                    drains[name] = drain_seconds(emulator) if name == "bare" else drain_queue(database_url,
                                                                                              args.drain_limit)
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
            if len(results) < 2:
                for result in results:
                    print(result.name, {key: round(value, 1) for key, value in result.summary().items()})
                return 0
            return 0 if report(results, backend, drains, server_errors) else 1


if __name__ == "__main__":
    sys.exit(main())
