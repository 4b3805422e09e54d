"""The LLM client through the real `openai` client over HTTP to the local OpenAI-compatible server."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import openai
import pytest

from bot.drafting.llm import (
    LLM_MAX_RETRIES,
    LLM_TIMEOUT_SECONDS,
    STRATEGIES,
    DraftFailed,
    draft_reply,
    make_llm_client,
)
from bot.infra.settings import Settings
from tests.openai_server import FakeOpenAI

MODEL = "gpt-4o-mini"


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key="sk-test", timeout_delay=2.0) as fake:
        yield fake


def client_for(server: FakeOpenAI, **options: float) -> openai.OpenAI:
    settings = Settings.model_validate({"openai_api_key": "sk-test", "openai_base_url": server.base_url})
    return make_llm_client(settings, **options)  # type: ignore[arg-type]


def test_client_defaults_and_settings() -> None:
    settings = Settings.model_validate({"openai_api_key": "sk-abc", "openai_base_url": "http://llm.local:8080/v1"})
    client = make_llm_client(settings)
    assert client.timeout == LLM_TIMEOUT_SECONDS == 30 and client.max_retries == LLM_MAX_RETRIES == 2
    assert str(client.base_url) == "http://llm.local:8080/v1/" and client.api_key == "sk-abc"
    with pytest.raises(DraftFailed, match="OPENAI_API_KEY is not set"):
        make_llm_client(Settings.model_validate({"openai_api_key": None}))


def test_structured_draft_round_trip(server: FakeOpenAI) -> None:
    server.responder = lambda request: {"text": "  We're on it.  ", "strategy": "correct",
                                        "rationale": "Set the record straight.",
                                        "concerns": ["", "Check times"]}
    result = draft_reply(client_for(server), MODEL, "rules", "the post")

    assert (result.text, result.strategy) == ("We're on it.", "correct")
    assert (result.model, result.source) == (MODEL, "llm")
    assert result.concerns == ["Check times"]
    body = server.last_request().body
    assert body["model"] == MODEL
    assert body["messages"] == [{"role": "system", "content": "rules"},
                                {"role": "user", "content": "the post"}]
    schema = body["response_format"]["json_schema"]
    assert schema["strict"] is True
    assert set(schema["schema"]["required"]) == {"text", "strategy", "rationale", "concerns"}
    assert schema["schema"]["properties"]["strategy"]["enum"] == list(STRATEGIES)


@pytest.mark.parametrize(("fault", "times", "reason"), [
    ("timeout", 3, "did not answer within 0.2 seconds (3 attempts)"),
    ("rate_limit", 3, "rate-limiting War Room (HTTP 429) (3 attempts)"),
    ("server_error", 3, "the language model service had an error (HTTP 500) (3 attempts)"),
    ("refusal", 1, "the model refused to draft this reply: I'm sorry"),
    ("garbage", 1, "could not be read as a draft"),
    ("auth", 1, "refused the API key (HTTP 401); check OPENAI_API_KEY"),
    ("length", 1, "was cut off before it finished"),
])
def test_every_failure_is_one_draft_failed_with_a_reason(server: FakeOpenAI, fault: str, times: int,
                                                         reason: str) -> None:
    server.fail_next(fault, times=times)
    # Only the timeout case needs a short client timeout; on a busy machine a 0.2 s timeout on the
    # others could time out the faulty answer itself, and the retry would then get a good one.
    timeout = 0.2 if fault == "timeout" else 10.0
    with pytest.raises(DraftFailed) as failed:
        draft_reply(client_for(server, timeout=timeout), MODEL, "rules", "post")
    assert reason in failed.value.reason
    assert server.faults_served == [fault] * times  # retried exactly as often as configured, no more


def test_transient_failures_are_retried_then_succeed(server: FakeOpenAI) -> None:
    server.fail_next("rate_limit")
    server.fail_next("server_error")
    result = draft_reply(client_for(server), MODEL, "rules", "post")
    assert result.text and len(server.generation_requests()) == 3


def test_unreachable_server_is_named() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = Settings.model_validate({"openai_api_key": "sk-test", "openai_base_url": f"http://127.0.0.1:{port}/v1"})
    with pytest.raises(DraftFailed, match=f"could not reach the language model at http://127.0.0.1:{port}/v1"):
        draft_reply(make_llm_client(settings, max_retries=0), MODEL, "rules", "post")
