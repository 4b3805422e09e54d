"""The ack benchmark's baseline: a bare Bolt app on War Room's server stack that only acks.

Same stack as `warroom serve`: a sync Bolt `App` (process_before_response=True, the same listener
thread pool), wrapped by Flask through Bolt's adapter and served by waitress with the same options.
One `/crisis` command listener and one block-action listener, each calling `ack()` and nothing else.

With `--commit`, each listener first commits the request's body as a row in DATABASE_URL (one
transaction per request, on War Room's engine settings), as the plainest app that acks only what it
has stored would: the price of a durable ack on this stack, without War Room's queue or its worker.

    SLACK_SIGNING_SECRET=... python bench/bare_app.py --port 3001 --threads 16
    SLACK_SIGNING_SECRET=... DATABASE_URL=sqlite:///acks.db python bench/bare_app.py --commit
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from flask import Flask, Response, jsonify, request
from slack_bolt import Ack, App
from slack_bolt.adapter.flask import SlackRequestHandler
from slack_sdk import WebClient
from sqlalchemy import Column, Integer, MetaData, Table, Text

from bot.app import LISTENER_THREADS
from bot.infra.settings import normalise_database_url
from bot.server import WEB_THREADS, run_web_server
from models import make_engine

ACKS = Table("bench_acks", MetaData(), Column("id", Integer, primary_key=True), Column("body", Text))


def create_bare_app(signing_secret: str, api_url: str, commit_to: str | None = None) -> Flask:
    """The WSGI app: POST /slack/events (ack only, or commit then ack) and GET /healthz."""
    engine = make_engine(normalise_database_url(commit_to)) if commit_to else None
    if engine is not None:
        ACKS.create(engine, checkfirst=True)

    def store(body: dict[str, Any]) -> None:
        if engine is not None:
            with engine.begin() as connection:
                connection.execute(ACKS.insert(), {"body": json.dumps(body)})

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
    def crisis(ack: Ack, body: dict[str, Any]) -> None:
        store(body)
        ack()

    @bolt.action(re.compile(".*"))
    def any_action(ack: Ack, body: dict[str, Any]) -> None:
        store(body)
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
    parser.add_argument("--commit", action="store_true", help="commit each request to DATABASE_URL before the ack")
    args = parser.parse_args(argv)
    secret = os.environ.get("SLACK_SIGNING_SECRET", "")
    if not secret:
        print("bare_app: SLACK_SIGNING_SECRET is not set", file=sys.stderr)
        return 2
    # The same waitress server and options as bot.server.serve.
    api_url = os.environ.get("SLACK_API_URL", "https://slack.com/api/")
    logging.basicConfig(level=logging.WARNING)
    commit_to = os.environ.get("DATABASE_URL") if args.commit else None
    if args.commit and not commit_to:
        print("bare_app: --commit needs DATABASE_URL", file=sys.stderr)
        return 2
    run_web_server(create_bare_app(secret, api_url, commit_to), host=args.host, port=args.port,
                   threads=args.threads, ident="bare")
    return 0


if __name__ == "__main__":
    sys.exit(main())
