"""The App Home: open incidents, recently resolved ones, your own open tasks, and the *Open incident* button.

Published when someone opens the tab, and again for the people concerned (opener, role holders, task
owners) when an incident opens, changes severity or resolves."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import App
from slack_sdk import WebClient

from bot.background.runtime import Runtime
from handlers.slack_gateway import client_gateway

log = logging.getLogger(__name__)


def register(app: App, runtime: Runtime) -> None:
    @app.event("app_home_opened")
    def home_opened(event: dict[str, Any], client: WebClient) -> None:
        if event.get("tab", "home") != "home":
            return  # the Messages tab needs nothing from us
        client_gateway(runtime, client).publish_home(event.get("user", ""))
