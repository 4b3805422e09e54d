"""The ack benchmark's baseline: a bare Bolt app on War Room's server stack that only acks.

Same stack as `warroom serve`: a sync Bolt `App` (process_before_response=True, the same listener
thread pool), wrapped by Flask through Bolt's adapter and served by waitress with the same options.
One `/crisis` command listener and one block-action listener, each calling `ack()` and nothing else.

    SLACK_SIGNING_SECRET=... python bench/bare_app.py --port 3001 --threads 16
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from flask import Flask, Response, jsonify, request
from slack_bolt import Ack, App
from slack_bolt.adapter.flask import SlackRequestHandler
from slack_sdk import WebClient

from bot.app import LISTENER_THREADS
from bot.server import WEB_THREADS, run_web_server


def create_bare_app(signing_secret: str, api_url: str) -> Flask:
    """The WSGI app: POST /slack/events (ack only) and GET /healthz."""
    bolt = App(
        # Bolt's authorization middleware calls auth.test once (lazily) and caches it, as in War Room.
        client=WebClient(token="xoxb-bare-app", base_url=api_url),
        signing_secret=signing_secret,
        token_verification_enabled=False,
        process_before_response=True,
        listener_executor=ThreadPoolExecutor(max_workers=LISTENER_THREADS, thread_name_prefix="listener"),
        raise_error_for_unhandled_request=False,
    )

    @bolt.command("/crisis")
    def crisis(ack: Ack) -> None:
        ack()

    @bolt.action(re.compile(".*"))
    def any_action(ack: Ack) -> None:
        ack()

    handler = SlackRequestHandler(bolt)
    web = Flask("bare")

    @web.post("/slack/events")
    def slack_events() -> Response:
        return handler.handle(request)

    @web.get("/healthz")
    def healthz() -> Response:
        return jsonify(status="ok")

    return web


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3001)
    parser.add_argument("--threads", type=int, default=WEB_THREADS)
    args = parser.parse_args(argv)
    secret = os.environ.get("SLACK_SIGNING_SECRET", "")
    if not secret:
        print("bare_app: SLACK_SIGNING_SECRET is not set", file=sys.stderr)
        return 2
    # The same waitress server and options as bot.server.serve.
    api_url = os.environ.get("SLACK_API_URL", "https://slack.com/api/")
    logging.basicConfig(level=logging.WARNING)
    run_web_server(create_bare_app(secret, api_url), host=args.host, port=args.port, threads=args.threads,
                   ident="bare")
    return 0


if __name__ == "__main__":
    sys.exit(main())
