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

from bot.background.runtime import Runtime
from bot.infra.metrics import metrics_response, observe_ack
from bot.infra.replay import ReplayGuard
from models import ping

log = logging.getLogger(__name__)
MAX_BODY = 1024 * 1024
MAX_MENTIONS_BODY = 5 * 1024 * 1024
# The most waitress takes in before the app sees a request (the largest route limit): a larger
# Content-Length gets its 413 as soon as the headers are in, and a chunked body stops being read
# there. The margin is chunk framing, which waitress counts as body.
MAX_SERVER_BODY = MAX_MENTIONS_BODY + 64 * 1024


def body_limit(path: str) -> int:
    """The largest request body a route takes: the webhook's batches 5 MB, everything else 1 MiB."""
    return MAX_MENTIONS_BODY if path == "/mentions" else MAX_BODY


def create_web_app(runtime: Runtime, bolt_app: App | None) -> Flask:
    """The WSGI app. `bolt_app` is None in Socket Mode, where Slack events do not come over HTTP."""
    web = Flask("warroom")

    @web.before_request
    def refuse_large_bodies() -> ResponseReturnValue | None:
        # The first hook, so neither the replay guard nor a route reads an oversized body.
        limit = body_limit(request.path)
        # werkzeug reads no further than this, and never past a Content-Length. A declared length is
        # refused unread (also on routes that never read their body); for a body of unknown length
        # (chunked, from a WSGI server that streams it) one byte past the limit tells, and get_data
        # caches it for the replay guard, Bolt and the routes.
        request.max_content_length = limit + 1
        size = request.content_length if request.content_length is not None else len(request.get_data())
        if size > limit:
            return jsonify(error=f"body is larger than {limit:,} bytes"), 413
        return None

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
        from bot.listening.ingest import handle_ingest_request

        status, payload = handle_ingest_request(
            runtime,
            authorization=request.headers.get("Authorization", ""),
            read_body=request.get_data,
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
        status, body, headers = metrics_response(
            runtime.settings.warroom_metrics_token, runtime.sessions, request.headers.get("Authorization", "")
        )
        return body, status, headers

    return web
