"""One structured-output call to the language model for the assistant (catch-up, post-mortem draft),
and the rule every answer obeys: a point that cites no timeline entry, or one it was not shown, is dropped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import openai
import pydantic
from pydantic import BaseModel, Field

from bot.background.runtime import Runtime
from bot.drafting.llm import DraftFailed, failure_reason, runtime_llm_client
from bot.drafting.prompts import defuse_markers
from bot.infra.metrics import LLM_ERRORS, LLM_SECONDS

log = logging.getLogger(__name__)
Answer = TypeVar("Answer", bound=BaseModel)
MAX_POINTS = 12
POINT_MAX = 600


class CitedPoint(BaseModel):
    """One point the model makes, with the timeline entries it rests on."""

    text: str = Field(description="One short sentence.")
    entries: list[int] = Field(description="Ids of the timeline entries (the numbers after #) this rests on.")


class AssistantFailed(Exception):
    """The model gave no usable answer; `reason` says why in words a comms person can act on."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ModelAccess:
    """The client and model to ask, or why there is none (no key configured)."""

    client: openai.OpenAI | None
    model: str
    unavailable: str | None = None


def model_access(runtime: Runtime) -> ModelAccess:
    """The process's LLM client, or the reason the assistant works without one."""
    model = runtime.settings.warroom_llm_model
    try:
        return ModelAccess(runtime_llm_client(runtime), model)
    except DraftFailed as exc:
        return ModelAccess(None, model, exc.reason)


def ask_model(client: openai.OpenAI, model: str, system: str, user: str, answer: type[Answer]) -> tuple[Answer, str]:
    """The parsed answer and the model that gave it; every failure (timeout, 429, 5xx, auth, refusal,
    an answer that is not the schema) is AssistantFailed. Timed and counted like drafts (GET /metrics)."""
    started = time.perf_counter()
    outcome = "error"
    try:
        completion = client.chat.completions.parse(
            model=model,
            messages=[{"role": "system", "content": system}, {"role": "user", "content": user}],
            response_format=answer,
        )
    except (pydantic.ValidationError, ValueError) as exc:
        LLM_ERRORS.labels("unusable_answer").inc()
        raise AssistantFailed("the model's answer was not the expected JSON") from exc
    except Exception as exc:  # every client failure ends as one AssistantFailed with a human reason
        LLM_ERRORS.labels(type(exc).__name__).inc()
        reason = failure_reason(exc, client)
        log.warning("assistant call to %s failed: %s", model, reason)
        raise AssistantFailed(reason) from exc
    else:
        outcome = "ok"
    finally:
        LLM_SECONDS.labels(outcome).observe(time.perf_counter() - started)
    message = completion.choices[0].message if completion.choices else None
    if message is None:
        raise AssistantFailed("the model's answer was empty")
    if message.refusal:
        raise AssistantFailed(f"the model refused: {message.refusal.strip()[:200]}")
    if message.parsed is None:
        raise AssistantFailed("the model's answer was not the expected JSON")
    return message.parsed, completion.model or model


def cited(points: Iterable[CitedPoint], known: set[int]) -> tuple[list[tuple[str, tuple[int, ...]]], int]:
    """The points that cite at least one entry and only entries the model was shown (text trimmed and
    bounded, citations de-duplicated), and how many were dropped."""
    kept: list[tuple[str, tuple[int, ...]]] = []
    dropped = 0
    for point in points:
        text = " ".join(point.text.split())[:POINT_MAX]
        entries = tuple(dict.fromkeys(point.entries))
        if not text or not entries or any(entry not in known for entry in entries) or len(kept) >= MAX_POINTS:
            dropped += 1
            continue
        kept.append((text, entries))
    return kept, dropped


def fence_line(text: str, limit: int) -> str:
    """Untrusted text as one line inside a fence: no control characters or line breaks, fence markers
    defused, bounded."""
    cleaned = "".join(char if char.isprintable() else " " for char in text)
    cleaned = defuse_markers(" ".join(cleaned.split()))
    return cleaned if len(cleaned) <= limit else cleaned[:limit] + " […]"


def fenced_lines(lines: Sequence[str], empty: str) -> str:
    return "\n".join(lines) if lines else empty
