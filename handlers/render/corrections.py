"""The overflow menu a monitor corrects a post's sentiment with (digest top posts, escalations)."""

from __future__ import annotations

from slack_sdk.models.blocks import Option, OverflowMenuElement

from bot.listening.corrections import LABELS

CORRECT_SENTIMENT_ACTION = "correct_sentiment"


def sentiment_menu(mention_id: int, shown: str) -> OverflowMenuElement:
    """Options `Sentiment is <label>` for the labels other than the one shown (value `<mention id>:<label>`)."""
    return OverflowMenuElement(action_id=CORRECT_SENTIMENT_ACTION, options=[
        Option(text=f"Sentiment is {label}", value=f"{mention_id}:{label}") for label in LABELS if label != shown
    ])
