"""The app factory: the Bolt app with War Room's listeners, and the HTTP app around it."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from slack_bolt import App, BoltResponse

from bot.background.runtime import Runtime

log = logging.getLogger(__name__)
LISTENER_THREADS = 32


class _TokenFromClient(logging.Filter):
    """Bolt reads SLACK_BOT_TOKEN itself and warns that our client's token wins; it is the same token."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "`token` will be unused" not in record.getMessage()


_BOLT_LOGGER = logging.getLogger("slack_bolt.App")
_BOLT_LOGGER.addFilter(_TokenFromClient())


def create_bolt_app(runtime: Runtime) -> App:
    """Build the Bolt app. No Slack call is made here: Bolt checks the token lazily on the first request."""
    from handlers import tables

    settings = runtime.settings
    signing_secret = settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else ""
    app = App(
        client=runtime.slack,
        signing_secret=signing_secret,
        token_verification_enabled=False,
        # Socket Mode requests arrive over Slack's own authenticated websocket.
        request_verification_enabled=not settings.socket_mode,
        # The response goes back when the listener returns. Every listener is quick: the work is
        # committed to the job queue and run by a worker after the ack; only modal openers call Slack
        # (views.open) inline, which the 3-second trigger_id needs anyway. No hand-off to an executor
        # thread per request, measured faster under load (bench/ack.py).
        process_before_response=True,
        listener_executor=ThreadPoolExecutor(max_workers=LISTENER_THREADS, thread_name_prefix="listener"),
        raise_error_for_unhandled_request=False,
    )

    @app.error
    def _log_unhandled(error: Exception, body: dict[str, Any]) -> BoltResponse | None:
        log.exception("unhandled error in a listener (type=%s)", body.get("type") or body.get("command"),
                      exc_info=error)
        return None

    tables.register(app, runtime)
    return app
