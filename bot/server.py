"""`warroom serve` and `warroom scheduler`: the long-running processes."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

import waitress
from flask import Flask
from waitress import wasyncore
from waitress.server import create_server

from bot.app import create_bolt_app
from bot.database import ensure_schema
from bot.plan import load_plan, plan_path
from bot.runtime import Runtime, build_runtime
from bot.scheduler import Scheduler
from bot.settings import Settings
from bot.web import create_web_app

log = logging.getLogger(__name__)
WEB_THREADS = 16


class ThreadedServer:
    """waitress serving a WSGI app on a background thread (tests, the demo, benchmarks), with a clean stop."""

    def __init__(self, app: Flask, host: str = "127.0.0.1", port: int = 0, threads: int = 8) -> None:
        self._server = create_server(app, host=host, port=port, threads=threads)
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


def prepare_runtime(settings: Settings) -> Runtime:
    """Plan, database and Slack client for a process; raises PlanError, SettingsError or SchemaNotReady."""
    plan = load_plan(plan_path(settings.warroom_plan))
    runtime = build_runtime(settings, plan)
    ensure_schema(runtime.engine, settings.database_url)
    return runtime


def serve(settings: Settings, *, scheduler: bool, host: str = "0.0.0.0", threads: int = WEB_THREADS) -> None:  # noqa: S104
    """Run the bot: HTTP on $PORT (or Socket Mode plus HTTP for /mentions and /healthz)."""
    settings.require("slack_bot_token")
    if not settings.socket_mode:
        settings.require("slack_signing_secret")
    runtime = prepare_runtime(settings)
    bolt_app = create_bolt_app(runtime)
    if scheduler:
        runtime.scheduler = Scheduler(runtime)
        runtime.scheduler.start()
    web_app = create_web_app(runtime, None if settings.socket_mode else bolt_app)
    if settings.socket_mode:
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        assert settings.slack_app_token is not None
        SocketModeHandler(bolt_app, settings.slack_app_token.get_secret_value()).connect()
        log.info("connected to Slack over Socket Mode")
    log.info("War Room listening on http://%s:%d (scheduler %s)", host, settings.port, "on" if scheduler else "off")
    try:
        waitress.serve(web_app, host=host, port=settings.port, threads=threads, ident="warroom",
                       channel_timeout=60, connection_limit=1000)
    finally:
        if runtime.scheduler is not None:
            runtime.scheduler.shutdown()


def run_scheduler(settings: Settings) -> None:
    """Run only the scheduler, until SIGTERM or SIGINT."""
    settings.require("slack_bot_token")
    runtime = prepare_runtime(settings)
    runtime.scheduler = Scheduler(runtime)
    stop = threading.Event()

    def _stop(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: stopping the scheduler", signum)
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    runtime.scheduler.start()
    log.info("scheduler running")
    try:
        stop.wait()
    finally:
        runtime.scheduler.shutdown()
