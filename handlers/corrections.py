"""The *correct sentiment* overflow menu on digest top posts and escalations (run from the queue)."""

from __future__ import annotations

from typing import Any

from slack_bolt import App, Respond
from slack_sdk import WebClient

from bot.background.runtime import Runtime
from bot.listening.corrections import CorrectionRefused, correct_sentiment, parse_choice
from handlers.interaction import clicker_teller, where
from handlers.queued import WorkTable, enqueue_listener
from handlers.render.corrections import CORRECT_SENTIMENT_ACTION
from models import transaction, utcnow

CORRECT = "sentiment:correct"


def handle_correction(runtime: Runtime, body: dict[str, Any], client: WebClient, respond: Respond) -> None:
    """Record the monitor's sentiment for the post, and tell them it now counts (or why it does not)."""
    action = (body.get("actions") or [{}])[0]
    user_id, channel_id = where(body)
    tell = clicker_teller(body, client, respond)
    choice = parse_choice(str((action.get("selected_option") or {}).get("value") or ""))
    if choice is None:
        tell("That menu is out of date; nothing was corrected.", None)
        return
    mention_id, label = choice
    try:
        with transaction(runtime.sessions) as session:
            corrected = correct_sentiment(session, channel_id=channel_id, user_id=user_id, mention_id=mention_id,
                                          label=label, now=utcnow())
    except CorrectionRefused as refusal:
        tell(str(refusal), None)
        return
    tell(f"Thanks: this post now counts as *{corrected.label}* in digests and exports "
         f"(the model said {corrected.model_label}).", None)


def register(app: App, runtime: Runtime, work: WorkTable) -> None:
    app.action(CORRECT_SENTIMENT_ACTION)(enqueue_listener(runtime, work, CORRECT))
