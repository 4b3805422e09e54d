"""The App Home: open incidents, recently resolved ones, your own open tasks, and the *Open incident* button.

Published when someone opens the tab, and again for the people concerned (opener, role holders, task
owners) when an incident opens, changes severity or resolves."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import App
from slack_sdk import WebClient

from bot.background.runtime import Runtime
from bot.crisis.incidents import home_incidents
from bot.tasks.tasks import open_tasks_of
from handlers.render.home import home_view
from models import transaction, utcnow

log = logging.getLogger(__name__)
RESOLVED_SHOWN = 10


def publish_home(runtime: Runtime, client: WebClient, user_id: str) -> None:
    """Publish the Home tab for one person: the incidents they may see (a private one only to its people)
    and their own open tasks."""
    with transaction(runtime.sessions) as session:
        open_incidents, resolved = home_incidents(session, runtime.plan, user_id, resolved_limit=RESOLVED_SHOWN)
        tasks = open_tasks_of(session, user_id)
    client.views_publish(user_id=user_id, view=home_view(open_incidents, resolved, utcnow(), tasks))


def register(app: App, runtime: Runtime) -> None:
    @app.event("app_home_opened")
    def home_opened(event: dict[str, Any], client: WebClient) -> None:
        if event.get("tab", "home") != "home":
            return  # the Messages tab needs nothing from us
        publish_home(runtime, client, event.get("user", ""))
