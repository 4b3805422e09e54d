"""FakeOpenAI, exercised through the real ``openai.OpenAI`` client over HTTP.

These tests double as the record of how openai 3.52 behaves for each failure the
drafting code must handle (see the docstring of tests/openai_server.py).
"""

from __future__ import annotations

import datetime as dt
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Annotated, Any, Literal

import jsonschema
import openai
import pydantic
import pytest
from openai.lib._pydantic import to_strict_json_schema

from tests.openai_server import (
    DEFAULT_TEXT,
    REFUSAL_TEXT,
    FakeOpenAI,
    instance_for_schema,
    requested_schema,
)

MODEL = "gpt-4o-mini"


class Draft(pydantic.BaseModel):
    """The shape the drafting code asks the model for."""

    text: str
    strategy: Literal["acknowledge", "apologise", "correct", "inform"]
    rationale: str
    concerns: list[str]


class Source(pydantic.BaseModel):
    url: str
    kind: Literal["post", "article"]


class Bundle(pydantic.BaseModel):
    """A deliberately awkward model: nested $defs, nullable refs, bounds, formats, dicts."""

    drafts: list[Draft] = pydantic.Field(min_length=2)
    primary: Draft
    source: Source | None
    confidence: int = pydantic.Field(ge=1, le=5)
    score: float = pydantic.Field(gt=0.5)
    when: dt.datetime
    tags: dict[str, str]
    approved: bool
    label: str = pydantic.Field(min_length=80, max_length=100)


class Thread(pydantic.BaseModel):
    """Recursive, with a discriminated union and a tuple."""

    post: Annotated[Source | Draft, pydantic.Field(union_mode="left_to_right")]
    reply_to: Thread | None
    replies: list[Thread]
    span: tuple[int, str]


CRISIS_MESSAGES: list[Any] = [
    {"role": "system", "content": "You draft calm public replies."},
    {"role": "user", "content": [{"type": "text", "text": "Reply to:"}, {"type": "text", "text": "<post>"}]},
]


@pytest.fixture(scope="module")
def shared_server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as running:
        yield running


@pytest.fixture(autouse=True)
def server(shared_server: FakeOpenAI) -> FakeOpenAI:
    """One server for the module (starting a client costs ~50 ms), wiped before each test."""
    shared_server.reset()
    shared_server.timeout_delay = 2.0
    return shared_server


@pytest.fixture(scope="module")
def client(shared_server: FakeOpenAI) -> Iterator[openai.OpenAI]:
    url = shared_server.base_url
    with openai.OpenAI(base_url=url, api_key="sk-test", timeout=0.5, max_retries=0) as made:
        yield made


def parse_chat(client: openai.OpenAI, response_format: type[pydantic.BaseModel] = Draft) -> Any:
    return client.chat.completions.parse(
        model=MODEL, messages=CRISIS_MESSAGES, response_format=response_format
    )


def parse_response(client: openai.OpenAI) -> Any:
    return client.responses.parse(
        model=MODEL,
        instructions="You draft calm public replies.",
        input=[{"role": "user", "content": [{"type": "input_text", "text": "Reply to: <post>"}]}],
        text_format=Draft,
    )


# --------------------------------------------------------------------------- happy paths


def test_chat_parse_with_default_responder_returns_the_model(client: openai.OpenAI) -> None:
    completion = parse_chat(client)

    message = completion.choices[0].message
    assert isinstance(message.parsed, Draft)
    assert message.parsed.strategy == "acknowledge"
    assert message.parsed.concerns == [DEFAULT_TEXT]
    assert message.refusal is None
    assert completion.object == "chat.completion"
    assert completion.id.startswith("chatcmpl-")
    assert completion.model == MODEL
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.total_tokens > 0
    assert completion._request_id is not None and completion._request_id.startswith("req_")


def test_chat_parse_with_custom_responder(server: FakeOpenAI, client: openai.OpenAI) -> None:
    wanted: dict[str, Any] = {
        "text": "We got it wrong.",
        "strategy": "apologise",
        "rationale": "r",
        "concerns": [],
    }
    server.responder = lambda request: wanted

    assert parse_chat(client).choices[0].message.parsed == Draft.model_validate(wanted)


def test_responses_parse_with_default_and_custom_responders(
    server: FakeOpenAI, client: openai.OpenAI
) -> None:
    response = parse_response(client)
    assert isinstance(response.output_parsed, Draft)
    assert response.object == "response" and response.status == "completed"
    assert response.id.startswith("resp_")
    assert response.output[0].type == "message"
    assert response.output[0].content[0].type == "output_text"

    wanted: dict[str, Any] = {"text": "Fixed.", "strategy": "correct", "rationale": "", "concerns": []}
    server.responder = lambda request: wanted
    assert parse_response(client).output_parsed == Draft.model_validate(wanted)


def test_a_plain_request_gets_text_and_a_string_reply_is_sent_verbatim(
    server: FakeOpenAI, client: openai.OpenAI
) -> None:
    plain = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    assert plain.choices[0].message.content == DEFAULT_TEXT

    server.responder = lambda request: "not { json"
    assert client.responses.create(model=MODEL, input="hi").output_text == "not { json"


@pytest.mark.parametrize("model", [Bundle, Thread])
def test_the_default_responder_satisfies_awkward_models(
    client: openai.OpenAI, model: type[pydantic.BaseModel]
) -> None:
    schema = to_strict_json_schema(model)
    jsonschema.validate(instance_for_schema(schema), schema)

    assert isinstance(parse_chat(client, model).choices[0].message.parsed, model)


def test_the_default_responder_fills_bounds_and_nested_lists(client: openai.OpenAI) -> None:
    bundle = parse_chat(client, Bundle).choices[0].message.parsed
    assert len(bundle.drafts) == 2 and bundle.source is not None
    assert bundle.confidence == 1 and bundle.score > 0.5 and 80 <= len(bundle.label) <= 100


def test_the_request_carries_the_messages_and_the_json_schema(
    server: FakeOpenAI, client: openai.OpenAI
) -> None:
    parse_chat(client)

    path, body, headers = server.requests[-1]
    assert path == "/v1/chat/completions"
    assert headers["authorization"] == "Bearer sk-test"
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["name"] == "Draft"
    assert body["response_format"]["json_schema"]["strict"] is True
    assert requested_schema(body) == to_strict_json_schema(Draft)
    assert server.last_messages() == [
        {"role": "system", "content": "You draft calm public replies."},
        {"role": "user", "content": "Reply to:\n<post>"},
    ]

    parse_response(client)
    path, body, _ = server.requests[-1]
    assert path == "/v1/responses"
    assert body["text"]["format"]["name"] == "Draft" and body["text"]["format"]["strict"] is True
    assert requested_schema(body) == to_strict_json_schema(Draft)
    assert server.last_messages() == [
        {"role": "system", "content": "You draft calm public replies."},
        {"role": "user", "content": "Reply to: <post>"},
    ]


def test_models_are_listed(client: openai.OpenAI) -> None:
    assert "gpt-4o-mini" in [model.id for model in client.models.list()]


# --------------------------------------------------------------------------- faults


def test_timeout_raises_api_timeout_error(server: FakeOpenAI, client: openai.OpenAI) -> None:
    server.fail_next("timeout", times=2)

    with pytest.raises(openai.APITimeoutError):
        parse_chat(client)  # timeout=0.5, max_retries=0
    with pytest.raises(openai.APITimeoutError):
        parse_response(client.with_options(timeout=0.2))
    assert server.faults_served == ["timeout", "timeout"]
    assert isinstance(parse_chat(client).choices[0].message.parsed, Draft)  # service resumes


def test_stop_does_not_wait_for_a_stalled_request() -> None:
    with FakeOpenAI() as own:
        own.fail_next("timeout")
        with (
            openai.OpenAI(base_url=own.base_url, api_key="sk-test", timeout=0.2, max_retries=0) as own_client,
            pytest.raises(openai.APITimeoutError),
        ):
            parse_chat(own_client)
        started = time.monotonic()
        own.stop()
        assert time.monotonic() - started < 1  # not the 2 s timeout_delay


def test_a_timeout_shorter_than_the_client_timeout_is_just_slow(
    server: FakeOpenAI, client: openai.OpenAI
) -> None:
    server.timeout_delay = 0.1
    server.fail_next("timeout")

    assert isinstance(parse_chat(client).choices[0].message.parsed, Draft)


def test_rate_limit_raises_rate_limit_error_with_the_real_body(
    server: FakeOpenAI, client: openai.OpenAI
) -> None:
    server.fail_next("rate_limit")

    with pytest.raises(openai.RateLimitError) as caught:
        parse_chat(client)
    error = caught.value
    assert error.status_code == 429
    assert error.code == "rate_limit_exceeded" and error.type == "tokens"
    assert isinstance(error.body, dict)
    assert error.body["message"].startswith("Rate limit reached for gpt-4o-mini")
    assert error.response.headers["retry-after"] == "1"
    assert error.response.headers["x-ratelimit-remaining-tokens"] == "0"
    assert error.request_id is not None


def test_server_error_raises_internal_server_error(server: FakeOpenAI, client: openai.OpenAI) -> None:
    server.fail_next("server_error", times=2)

    for call in (parse_chat, parse_response):
        with pytest.raises(openai.InternalServerError) as caught:
            call(client)
        assert caught.value.status_code == 500 and caught.value.type == "server_error"
    assert server.faults_served == ["server_error", "server_error"]


def test_auth_fault_raises_authentication_error_and_is_not_retried(
    server: FakeOpenAI, client: openai.OpenAI
) -> None:
    server.fail_next("auth")
    with pytest.raises(openai.AuthenticationError) as caught:
        parse_chat(client.with_options(max_retries=2))
    assert caught.value.status_code == 401 and caught.value.code == "invalid_api_key"
    assert len(server.requests) == 1


def test_refusal_is_a_field_not_an_exception(server: FakeOpenAI, client: openai.OpenAI) -> None:
    server.fail_next("refusal", times=2)

    message = parse_chat(client).choices[0].message
    assert message.refusal == REFUSAL_TEXT
    assert message.content is None and message.parsed is None

    response = parse_response(client)
    assert response.output_parsed is None and response.output_text == ""
    part = response.output[0].content[0]
    assert part.type == "refusal" and part.refusal == REFUSAL_TEXT


def test_garbage_raises_pydantic_validation_error(server: FakeOpenAI, client: openai.OpenAI) -> None:
    server.fail_next("garbage", times=2)

    for call in (parse_chat, parse_response):
        with pytest.raises(pydantic.ValidationError) as caught:
            call(client)
        assert not isinstance(caught.value, openai.OpenAIError)
    server.responder = lambda request: {"text": "valid JSON, wrong shape"}
    with pytest.raises(pydantic.ValidationError):
        parse_chat(client)


def test_length_raises_length_error_on_chat_and_validation_error_on_responses(
    server: FakeOpenAI, client: openai.OpenAI
) -> None:
    server.fail_next("length", times=2)

    with pytest.raises(openai.LengthFinishReasonError) as caught:
        parse_chat(client)
    assert caught.value.completion.choices[0].finish_reason == "length"
    with pytest.raises(pydantic.ValidationError):
        parse_response(client)


def test_the_clients_retries_get_through_a_500_and_a_429(server: FakeOpenAI, client: openai.OpenAI) -> None:
    server.fail_next("server_error")
    server.fail_next("rate_limit")

    assert isinstance(parse_chat(client.with_options(max_retries=2)).choices[0].message.parsed, Draft)
    assert server.faults_served == ["server_error", "rate_limit"]
    assert [headers["x-stainless-retry-count"] for _, _, headers in server.requests] == ["0", "1", "2"]


def test_faults_queue_in_order_and_unknown_kinds_are_refused(
    server: FakeOpenAI, client: openai.OpenAI
) -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        server.fail_next("meteor")
    server.fail_next("refusal")
    server.fail_next("garbage")

    assert parse_chat(client).choices[0].message.refusal == REFUSAL_TEXT
    with pytest.raises(pydantic.ValidationError):
        parse_chat(client)
    assert parse_chat(client).choices[0].message.parsed is not None
    assert server.faults_served == ["refusal", "garbage"]


# --------------------------------------------------------------------------- auth and plumbing


def test_a_request_without_a_bearer_token_gets_401(server: FakeOpenAI) -> None:
    request = urllib.request.Request(
        f"{server.base_url}/chat/completions",
        data=json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=2)
    assert caught.value.code == 401
    error = json.loads(caught.value.read())["error"]
    assert error["type"] == "invalid_request_error" and error["code"] is None
    assert error["message"].startswith("You didn't provide an API key")


def test_a_wrong_key_is_refused_when_the_server_expects_one() -> None:
    with FakeOpenAI(api_key="sk-right") as own:
        with (
            openai.OpenAI(base_url=own.base_url, api_key="sk-wrong-key", max_retries=0, timeout=0.5) as wrong,
            pytest.raises(openai.AuthenticationError) as caught,
        ):
            parse_chat(wrong)
        assert caught.value.code == "invalid_api_key"
        right = openai.OpenAI(base_url=own.base_url, api_key="sk-right", max_retries=0, timeout=0.5)
        with right:
            assert parse_chat(right).choices[0].message.parsed is not None


def test_a_broken_responder_fails_loudly_without_retries(server: FakeOpenAI, client: openai.OpenAI) -> None:
    def broken(request: dict[str, Any]) -> str:
        raise ZeroDivisionError("responder bug")

    server.responder = broken

    with pytest.raises(openai.InternalServerError, match="ZeroDivisionError"):
        parse_chat(client.with_options(max_retries=2))
    assert len(server.requests) == 1 and isinstance(server.errors[0], ZeroDivisionError)


def test_a_stopped_server_refuses_even_pooled_connections() -> None:
    with FakeOpenAI() as own:
        own_client = openai.OpenAI(base_url=own.base_url, api_key="sk-test", timeout=0.5, max_retries=0)
        parse_chat(own_client)  # leaves a kept-alive connection in the client's pool
    with own_client, pytest.raises(openai.APIConnectionError):
        parse_chat(own_client)
