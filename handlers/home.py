"""The App Home: open incidents, recently resolved ones, and the *Open incident* button."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import App
from slack_sdk import WebClient

from bot.background.runtime import Runtime
from bot.crisis.incidents import home_incidents
from handlers.render.home import home_view
from models import transaction, utcnow

log = logging.getLogger(__name__)
RESOLVED_SHOWN = 10


def publish_home(runtime: Runtime, client: WebClient, user_id: str) -> None:
    """Publish the Home tab for one person: the incidents they may see (a private one only to its people)."""
    with transaction(runtime.sessions) as session:
        open_incidents, resolved = home_incidents(session, runtime.plan, user_id, resolved_limit=RESOLVED_SHOWN)
    client.views_publish(user_id=user_id, view=home_view(open_incidents, resolved, utcnow()))


def register(app: App, runtime: Runtime) -> None:
    @app.event("app_home_opened")
    def home_opened(event: dict[str, Any], client: WebClient) -> None:
        if event.get("tab", "home") != "home":
            return  # the Messages tab needs nothing from us
        publish_home(runtime, client, event.get("user", ""))
