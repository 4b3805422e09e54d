"""`warroom serve` and `warroom scheduler`: the long-running processes."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

import waitress

from bot.app import create_bolt_app
from bot.database import ensure_schema
from bot.plan import load_plan, plan_path
from bot.runtime import Runtime, build_runtime
from bot.scheduler import Scheduler
from bot.settings import Settings
from bot.web import create_web_app

log = logging.getLogger(__name__)
WEB_THREADS = 16


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
