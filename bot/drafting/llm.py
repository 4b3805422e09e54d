"""The LLM client: one structured-output call drafting a reply, and one exception for every way it fails."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Literal

import openai
import pydantic
from pydantic import BaseModel, Field

from bot.background.runtime import Runtime
from bot.infra.metrics import LLM_ERRORS, LLM_SECONDS
from bot.infra.settings import Settings

log = logging.getLogger(__name__)

LLM_TIMEOUT_SECONDS = 30.0
LLM_MAX_RETRIES = 2
STRATEGIES = ("acknowledge", "apologise", "correct", "inform")
Strategy = Literal["acknowledge", "apologise", "correct", "inform"]


class DraftReply(BaseModel):
    """What the model must return (sent as a strict JSON schema)."""

    text: str = Field(description="The reply exactly as it would be posted.")
    strategy: Strategy = Field(description="acknowledge, apologise, correct or inform.")
    rationale: str = Field(description="One or two sentences for the approver on why this reply.")
    concerns: list[str] = Field(description="What the approver should check before posting; may be empty.")


@dataclass(frozen=True)
class DraftResult:
    """A drafted reply, from the model or from a template."""

    text: str
    strategy: str
    rationale: str
    concerns: list[str] = field(default_factory=list)
    model: str | None = None
    source: str = "llm"


class DraftFailed(Exception):
    """The model gave no usable draft; `reason` says why in words a comms person can act on."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def make_llm_client(
    settings: Settings, *, timeout: float = LLM_TIMEOUT_SECONDS, max_retries: int = LLM_MAX_RETRIES
) -> openai.OpenAI:
    """An OpenAI client for OPENAI_API_KEY / OPENAI_BASE_URL; creating it makes no network call."""
    if settings.openai_api_key is None:
        raise DraftFailed("no LLM is configured (OPENAI_API_KEY is not set)")
    return openai.OpenAI(
        api_key=settings.openai_api_key.get_secret_value(),
        base_url=settings.openai_base_url,  # None: the SDK's default (or OPENAI_BASE_URL)
        timeout=timeout,
        max_retries=max_retries,
    )


def draft_reply(client: openai.OpenAI, model: str, system: str, user: str) -> DraftResult:
    """Ask `model` for a reply; any failure (timeout, 429, 5xx, refusal, unreadable answer) is DraftFailed.
    Timed and counted for GET /metrics."""
    started = time.perf_counter()
    outcome = "error"
    try:
        result = _draft_reply(client, model, system, user)
        outcome = "ok"
        return result
    except DraftFailed as exc:
        # The client's exception class when the call failed; the answer's own faults are one kind.
        LLM_ERRORS.labels(type(exc.__cause__).__name__ if exc.__cause__ else "unusable_answer").inc()
        raise
    finally:
        LLM_SECONDS.labels(outcome).observe(time.perf_counter() - started)


def _draft_reply(client: openai.OpenAI, model: str, system: str, user: str) -> DraftResult:
    try:
        completion = client.chat.completions.parse(
            model=model,
            messages=[{"role": "system", "content": system}, {"role": "user", "content": user}],
            response_format=DraftReply,
        )
    except Exception as exc:  # every failure kind ends as one DraftFailed with a human reason
        reason = failure_reason(exc, client)
        log.warning("drafting with %s failed: %s", model, reason)
        raise DraftFailed(reason) from exc
    if not completion.choices:
        raise DraftFailed("the model's answer held no reply")
    message = completion.choices[0].message
    if message.refusal:
        raise DraftFailed(f"the model refused to draft this reply: {message.refusal.strip()[:300]}")
    parsed = message.parsed
    if parsed is None:
        raise DraftFailed("the model's answer could not be read as a draft")
    text = parsed.text.strip()
    if not text:
        raise DraftFailed("the model returned an empty reply")
    return DraftResult(
        text=text,
        strategy=parsed.strategy,
        rationale=parsed.rationale.strip(),
        concerns=[concern.strip() for concern in parsed.concerns if concern.strip()],
        model=completion.model or model,
        source="llm",
    )


def failure_reason(exc: BaseException, client: openai.OpenAI | None = None) -> str:
    """Why a draft call failed, in one sentence."""
    timeout = getattr(client, "timeout", None)
    retries = getattr(client, "max_retries", None)
    tries = f" ({retries + 1} attempts)" if isinstance(retries, int) else ""
    if isinstance(exc, openai.APITimeoutError):
        seconds = f" within {timeout:g} seconds" if isinstance(timeout, int | float) else ""
        return f"the language model did not answer{seconds}{tries}"
    if isinstance(exc, openai.APIConnectionError):
        return f"could not reach the language model at {getattr(client, 'base_url', 'its address')}{tries}"
    if isinstance(exc, openai.RateLimitError):
        return f"the language model is rate-limiting War Room (HTTP 429){tries}; wait a minute and retry"
    if isinstance(exc, openai.AuthenticationError):
        return "the language model refused the API key (HTTP 401); check OPENAI_API_KEY"
    if isinstance(exc, openai.PermissionDeniedError):
        return "the API key may not use this model (HTTP 403); check WARROOM_LLM_MODEL and the key"
    if isinstance(exc, openai.NotFoundError):
        return "the language model service does not know this model (HTTP 404); check WARROOM_LLM_MODEL"
    if isinstance(exc, openai.APIStatusError):
        if exc.status_code >= 500:
            return f"the language model service had an error (HTTP {exc.status_code}){tries}"
        return f"the language model service refused the request (HTTP {exc.status_code})"
    if isinstance(exc, openai.LengthFinishReasonError):
        return "the model's answer was cut off before it finished"
    if isinstance(exc, openai.ContentFilterFinishReasonError):
        return "the model's content filter stopped the answer"
    if isinstance(exc, pydantic.ValidationError | ValueError):
        return "the model's answer could not be read as a draft (not the expected JSON)"
    if isinstance(exc, openai.OpenAIError):
        return f"the language model call failed ({type(exc).__name__})"
    return f"drafting failed unexpectedly ({type(exc).__name__})"


def runtime_llm_client(runtime: Runtime) -> openai.OpenAI:
    """The process's client, made on first use; `runtime.extras` may set `llm_timeout`, `llm_max_retries`."""
    client = runtime.extras.get("llm_client")
    if client is None:
        client = make_llm_client(
            runtime.settings,
            timeout=float(runtime.extras.get("llm_timeout", LLM_TIMEOUT_SECONDS)),
            max_retries=int(runtime.extras.get("llm_max_retries", LLM_MAX_RETRIES)),
        )
        runtime.extras["llm_client"] = client
    return client
