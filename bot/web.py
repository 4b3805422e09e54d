"""The HTTP surface: POST /slack/events, POST /mentions, GET /healthz, GET /metrics (Flask, served by waitress)."""

from __future__ import annotations

import logging
import time

from flask import Flask, jsonify, request
from flask.typing import ResponseReturnValue
from slack_bolt import App
from slack_bolt.adapter.flask import SlackRequestHandler
from slack_bolt.adapter.flask.handler import to_bolt_request, to_flask_response
from sqlalchemy.exc import SQLAlchemyError

from bot.metrics import metrics_response, observe_ack
from bot.replay import ReplayGuard
from bot.runtime import Runtime
from models import ping

log = logging.getLogger(__name__)
MAX_MENTIONS_BODY = 5 * 1024 * 1024


def create_web_app(runtime: Runtime, bolt_app: App | None) -> Flask:
    """The WSGI app. `bolt_app` is None in Socket Mode, where Slack events do not come over HTTP."""
    web = Flask("warroom")
    web.config["MAX_CONTENT_LENGTH"] = None
    slack_handler = SlackRequestHandler(bolt_app) if bolt_app is not None else None
    if slack_handler is not None and runtime.settings.slack_signing_secret is not None:
        # Refuse a replayed (identical, still fresh) signed request before Bolt sees it.
        web.before_request(ReplayGuard(runtime.settings.slack_signing_secret.get_secret_value()).flask_hook)

    @web.post("/slack/events")
    def slack_events() -> ResponseReturnValue:
        if slack_handler is None:
            return jsonify(error="this process runs in Socket Mode; Slack events do not come over HTTP"), 404
        # SlackRequestHandler.handle's POST path, keeping Bolt's parsed request to name the surface timed.
        started = time.perf_counter()
        bolt_request = to_bolt_request(request)
        response = slack_handler.app.dispatch(bolt_request)
        if response.status != 401:  # a request that failed its signature is not Slack's
            observe_ack(bolt_request.body, time.perf_counter() - started)
        return to_flask_response(response)

    @web.post("/mentions")
    def mentions() -> ResponseReturnValue:
        from bot.ingest import handle_ingest_request

        status, payload = handle_ingest_request(
            runtime,
            authorization=request.headers.get("Authorization", ""),
            content_length=request.content_length,
            read_body=lambda: request.stream.read(MAX_MENTIONS_BODY + 1),
        )
        return jsonify(payload), status

    @web.get("/healthz")
    def healthz() -> ResponseReturnValue:
        try:
            ping(runtime.engine)
        except SQLAlchemyError as exc:
            log.warning("health check: database unreachable: %s", type(exc).__name__)
            return jsonify(status="unavailable", database="unreachable"), 503
        return jsonify(status="ok", database="ok"), 200

    @web.get("/metrics")
    def metrics() -> ResponseReturnValue:
        status, body, headers = metrics_response(runtime, request.headers.get("Authorization", ""))
        return body, status, headers

    return web
