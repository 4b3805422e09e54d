"""`warroom serve` and `warroom scheduler`: the long-running processes."""

from __future__ import annotations

import gc
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from types import FrameType
from typing import Any

from flask import Flask
from waitress import wasyncore
from waitress.server import create_server

from bot.app import create_bolt_app
from bot.background.leader import lead_scheduler, start_leader_thread
from bot.background.runtime import Runtime, build_runtime
from bot.crisis.plan import load_plan, plan_path
from bot.infra.database import ensure_schema
from bot.infra.settings import Settings
from bot.queue.worker import Worker, run_worker_process
from bot.web import MAX_SERVER_BODY, create_web_app

log = logging.getLogger(__name__)
WEB_THREADS = 16
WORKER_THREADS = 4
# The worker yields the CPU to the web threads that must ack Slack within 3 seconds. On SQLite too:
# a niced worker preempted while holding the one write lock makes acks wait for it (priority
# inversion), but the job writer polls the lock every 0.5 ms, and bench/ack.py (SQLite, worker on)
# gave 1,237 and 1,288 req/s with p99 68 and 61 ms niced against 1,138 and 1,184 req/s with p99 75 and
# 70 ms not; at 400 requests a second p99 17 and 13 ms niced, 19 and 18 ms not.
WORKER_NICENESS = 10
# How often a web process that had requests waiting for a free thread says so.
QUEUE_REPORT_SECONDS = 60.0
QUEUE_SAMPLE_SECONDS = 0.25


class QueueDepthReport:
    """One log line a minute, while web requests are waiting for a free thread, with the deepest queue.

    waitress itself warns "Task queue depth is N" on every request that finds all its threads busy:
    under a burst that is a line per request (thousands a second), and making those lines took 7% of
    the web process's CPU in the ack benchmark. Its logger is turned down and this reports instead."""

    def __init__(self, threads: int, every: float = QUEUE_REPORT_SECONDS) -> None:
        self.threads = threads
        self.every = every
        self._deepest = 0
        self._since: float | None = None

    def sample(self, depth: int, now: float) -> str | None:
        """Note the queue depth seen at `now`; return the line to log when a report is due."""
        if self._since is None:
            self._since = now
        self._deepest = max(self._deepest, depth)
        if now - self._since < self.every:
            return None
        deepest, self._deepest, self._since = self._deepest, 0, now
        if not deepest:
            return None
        return (f"web requests waited for a free thread in the last {self.every:.0f} s (up to {deepest} "
                f"queued, {self.threads} threads): add --threads or web processes if acks are slow")


def run_web_server(app: Flask, *, host: str, port: int, threads: int, ident: str = "warroom",
                   report_every: float = QUEUE_REPORT_SECONDS) -> None:
    """Serve `app` with waitress until the process ends (`warroom serve`, and the ack bench's bare app)."""
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    server = create_server(app, host=host, port=port, threads=threads, ident=ident, channel_timeout=60,
                           connection_limit=1000, max_request_body_size=MAX_SERVER_BODY)
    dispatcher = server.task_dispatcher  # type: ignore[union-attr]
    threading.Thread(target=_watch_queue, args=(dispatcher, QueueDepthReport(threads, report_every)), daemon=True,
                     name="web-queue-watch").start()
    server.run()


def _watch_queue(dispatcher: object, report: QueueDepthReport) -> None:
    queue = getattr(dispatcher, "queue", None)  # waitress's deque of requests waiting for a thread
    if queue is None:
        return
    while True:
        time.sleep(QUEUE_SAMPLE_SECONDS)
        line = report.sample(len(queue), time.monotonic())
        if line:
            log.warning("%s", line)


class ThreadedServer:
    """waitress serving a WSGI app on a background thread (tests, the demo, benchmarks), with a clean stop."""

    def __init__(self, app: Flask, host: str = "127.0.0.1", port: int = 0, threads: int = 8) -> None:
        self._server = create_server(app, host=host, port=port, threads=threads,
                                     max_request_body_size=MAX_SERVER_BODY)
        self.port = int(self._server.effective_port)  # type: ignore[union-attr]
        self.url = f"http://{host}:{self.port}"
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="warroom-http", daemon=True)

    def _serve(self) -> None:
        # waitress's loop runs until its socket map is empty; polling in short rounds lets the
        # serving thread itself close every socket when asked to stop (closing them from another
        # thread would pull file descriptors out from under select()).
        socket_map = self._server._map  # type: ignore[union-attr]
        while not self._stopping.is_set():
            wasyncore.loop(timeout=0.05, map=socket_map, count=1)
        wasyncore.close_all(socket_map)

    def start(self) -> ThreadedServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving: the listener and every keep-alive connection are closed."""
        self._stopping.set()
        self._thread.join(timeout=5)
        self._server.task_dispatcher.shutdown(timeout=5)  # type: ignore[union-attr]


class InProcessApp:
    """All of War Room in this process: the HTTP app on a thread and worker threads (tests, the demo)."""

    def __init__(self, runtime: Runtime, *, threads: int = 8, worker_threads: int = 4, host: str = "127.0.0.1",
                 port: int = 0, socket_mode_token: str | None = None) -> None:
        from handlers import tables

        self.runtime = runtime
        self.bolt = create_bolt_app(runtime)
        self.web = create_web_app(runtime, self.bolt)
        self._server = ThreadedServer(self.web, host=host, port=port, threads=threads)
        self.url = self._server.url
        # Where this process reaches it (a drill served on 0.0.0.0 posts its stream to itself here).
        self.local_url = f"http://127.0.0.1:{self._server.port}"
        self.worker = Worker(runtime, tables.run_job, threads=worker_threads, poll_seconds=0.05,
                             tell_failure=tables.tell_job_failed)
        self._socket_mode_token = socket_mode_token
        self._socket_mode: Any = None

    def start(self) -> InProcessApp:
        self.worker.start()
        self._server.start()
        if self._socket_mode_token:  # Slack's requests come over its websocket (a drill in Socket Mode)
            from slack_bolt.adapter.socket_mode import SocketModeHandler

            self._socket_mode = SocketModeHandler(self.bolt, self._socket_mode_token)
            self._socket_mode.connect()
        return self

    def stop(self) -> None:
        if self._socket_mode is not None:
            self._socket_mode.close()
        self._server.stop()
        self.worker.stop()


def prepare_runtime(settings: Settings) -> Runtime:
    """Plan, database and Slack client for a process; raises PlanError, SettingsError or SchemaNotReady."""
    plan = load_plan(plan_path(settings.warroom_plan))
    runtime = build_runtime(settings, plan)
    ensure_schema(runtime.engine, settings.database_url)
    return runtime


class WorkerChild:
    """`warroom worker` as a child process of `serve`, niced, restarted if it dies, stopped with its parent."""

    def __init__(self, threads: int, niceness: int = WORKER_NICENESS) -> None:
        self.command = [sys.executable, "-m", "bot.cli", "worker", "--threads", str(threads),
                        "--nice", str(niceness), "--parent-pid", str(os.getpid())]
        self._process: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._supervise, name="worker-supervisor", daemon=True)

    def start(self) -> WorkerChild:
        self._thread.start()
        return self

    def _supervise(self) -> None:
        while not self._stopping.is_set():
            self._process = subprocess.Popen(self.command)
            code = self._process.wait()
            if self._stopping.is_set():
                return
            log.error("the worker process exited with %s; starting another", code)
            self._stopping.wait(1.0)

    def stop(self) -> None:
        self._stopping.set()
        process = self._process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


def freeze_startup_objects() -> None:
    """Leave what start-up made (modules, the plan, the app, the clients: ~240,000 objects, most of them
    the platform SDKs' models) out of every later garbage collection. A full collection over them took
    160 ms of held GIL at a time, which showed as the ack's p99 under load (bench/ack.py)."""
    gc.collect()
    gc.freeze()


def serve(
    settings: Settings,
    *,
    scheduler: bool,
    worker_threads: int = WORKER_THREADS,
    host: str = "0.0.0.0",  # noqa: S104
    threads: int = WEB_THREADS,
) -> None:
    """Run the bot: HTTP on $PORT (or Socket Mode plus HTTP for /mentions and /healthz), a worker child
    process for acknowledged work unless `worker_threads` is 0, and the scheduler unless `scheduler` is off."""
    settings.require("slack_bot_token")
    if not settings.socket_mode:
        settings.require("slack_signing_secret")
    from handlers.slack_gateway import job_gateway

    runtime = prepare_runtime(settings)
    bolt_app = create_bolt_app(runtime)
    leader_stop = start_leader_thread(runtime, job_gateway(runtime))[1] if scheduler else None
    worker = WorkerChild(worker_threads).start() if worker_threads > 0 else None
    web_app = create_web_app(runtime, None if settings.socket_mode else bolt_app)
    if settings.socket_mode:
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        assert settings.slack_app_token is not None
        SocketModeHandler(bolt_app, settings.slack_app_token.get_secret_value()).connect()
        log.info("connected to Slack over Socket Mode")
    freeze_startup_objects()
    # SIGTERM (a platform restart) ends the serving loop like Ctrl-C, so the worker child and the
    # scheduler lock are released by the `finally` below rather than left behind.
    signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(0))
    log.info("War Room listening on http://%s:%d (scheduler %s, worker %s)", host, settings.port,
             "on" if scheduler else "off", f"{worker_threads} threads" if worker else "off")
    try:
        run_web_server(web_app, host=host, port=settings.port, threads=threads)
    finally:
        if leader_stop is not None:
            leader_stop.set()
        if worker is not None:
            worker.stop()


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def _stop(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    return stop


def run_scheduler(settings: Settings) -> None:
    """Run only the scheduler, until SIGTERM or SIGINT. Of several, one leads and the others stand by."""
    settings.require("slack_bot_token")
    runtime = prepare_runtime(settings)
    from handlers.slack_gateway import job_gateway

    lead_scheduler(runtime, job_gateway(runtime), _stop_on_signals())


def run_worker(settings: Settings, *, threads: int, niceness: int, parent_pid: int | None) -> None:
    """Run only a worker (the jobs web processes queued), until SIGTERM or SIGINT."""
    from handlers import tables

    settings.require("slack_bot_token")
    runtime = prepare_runtime(settings)
    if niceness:
        os.nice(niceness)
    freeze_startup_objects()
    run_worker_process(runtime, tables.run_job, threads=threads, stop=_stop_on_signals(),
                       parent_pid=parent_pid, tell_failure=tables.tell_job_failed)
