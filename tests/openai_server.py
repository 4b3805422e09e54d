"""A local, OpenAI-compatible HTTP server for tests: ``FakeOpenAI``.

OpenAI is never reachable from tests, so the drafting code is exercised through
the real ``openai.OpenAI`` client pointed at this server::

    with FakeOpenAI() as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0, timeout=0.5)
        completion = client.chat.completions.parse(model="gpt-4o-mini", messages=[...], response_format=Draft)
        draft = completion.choices[0].message.parsed

What the server does
--------------------
* ``POST /v1/chat/completions`` and ``POST /v1/responses`` (non-streaming) answer
  with the bodies the real API returns; ``GET /v1/models`` lists ``server.models``.
* The reply text comes from ``server.responder(request_json) -> dict | str``: a dict
  is JSON-encoded, a str is sent verbatim. The default responder builds a valid
  instance of the requested JSON schema (``instance_for_schema``), so any pydantic
  model round-trips without a test writing a responder.
* ``server.requests`` records ``(path, body, headers)`` (headers lower-cased);
  ``server.last_messages()`` gives the last generation request's messages as
  ``[{"role", "content"}]`` with content flattened to text (text parts joined by
  newlines; a responses request's ``instructions`` come first, as role ``system``).
* ``server.fail_next(kind, times=1)`` makes the next ``times`` generation requests
  (chat or responses; ``/v1/models`` is never faulted) fail, in call order; served
  faults are appended to ``server.faults_served``. Every request needs
  ``Authorization: Bearer <key>`` (any key, or exactly ``server.api_key`` if set).

How openai 3.52 does structured output (checked against this server by
tests/test_openai_server.py; the client runs on ``httpx2``, not ``httpx``)
------------------------------------------------------------------------------
* Chat: ``client.chat.completions.parse(model=..., messages=[...], response_format=Model)``
  sends ``response_format={"type": "json_schema", "json_schema": {"name": "Model",
  "schema": <strict schema>, "strict": True}}`` and returns a ``ParsedChatCompletion``;
  the model instance is ``completion.choices[0].message.parsed``. Passing a pydantic
  class to ``chat.completions.create`` raises ``TypeError`` (use ``parse``).
* Responses: ``client.responses.parse(model=..., input=[...] | str, instructions=...,
  text_format=Model)`` sends ``text={"format": {"type": "json_schema", "name": "Model",
  "schema": ..., "strict": True}}``; the instance is ``response.output_parsed``
  (``output[i].content[j].parsed`` on the ``output_text`` part).
* Timeout/retries: ``openai.OpenAI(timeout=..., max_retries=...)`` or per call
  ``client.with_options(timeout=..., max_retries=...)`` or ``parse(..., timeout=...)``.
  Default timeout is 600 s (connect 5 s) and default ``max_retries`` is 2. Retried
  automatically: timeouts, connection errors, 408, 409, 429 and >=500, with
  exponential backoff from 0.5 s (max 8 s, up to 25 % jitter) unless the response
  has ``retry-after-ms`` / ``retry-after`` (honoured when 0 < delay <= 120 s; a
  longer one means no retry at all). Each attempt carries ``x-stainless-retry-count``.
  Parsing happens after the HTTP exchange, so garbage and length errors are never
  retried by the client; retrying those is the caller's decision.
* To catch every LLM failure in one place: ``except (openai.OpenAIError,
  pydantic.ValidationError)``, and treat a refusal (or ``parsed is None``) as a
  failure too. Note ``LengthFinishReasonError`` and ``ContentFilterFinishReasonError``
  subclass ``OpenAIError`` but not ``APIError``.

What each failure raises (all ``openai.*`` classes subclass ``openai.OpenAIError``)
------------------------------------------------------------------------------------
=============  ==============================================================
fault kind     what the client does
=============  ==============================================================
timeout        ``openai.APITimeoutError`` (a subclass of ``APIConnectionError``)
               once the read timeout passes, after its retries.
rate_limit     ``openai.RateLimitError`` (HTTP 429, ``APIStatusError``), after its
               retries: ``.status_code == 429``, ``.code == "rate_limit_exceeded"``,
               ``.type == "tokens"`` (the real API puts the limit kind, ``tokens`` or
               ``requests``, in ``type``), ``.body`` is the inner ``error`` dict,
               ``.response.headers`` has ``retry-after`` and ``x-ratelimit-*``
               (this server advertises ``server.retry_after``, default 50 ms, so
               client retries stay fast), ``.request_id``.
server_error   ``openai.InternalServerError`` (HTTP 500, after its retries),
               ``.type == "server_error"``.
auth           ``openai.AuthenticationError`` (HTTP 401, not retried),
               ``.code == "invalid_api_key"``.
refusal        No exception. Chat: ``message.refusal`` is the refusal text
               (``server.refusal_text``),
               ``message.content`` and ``message.parsed`` are ``None``.
               Responses: ``output_parsed`` is ``None``, ``output_text == ""``, and
               the message content holds a part ``type == "refusal"``.
garbage        ``pydantic.ValidationError`` raised by ``parse`` itself (not wrapped
               in an ``openai`` error): invalid JSON or JSON not matching the model.
length         (``finish_reason="length"``) Chat: ``openai.LengthFinishReasonError``
               (``.completion`` holds the raw completion). Responses: the SDK does not
               check ``status == "incomplete"``; the truncated text fails to parse, so
               ``pydantic.ValidationError``.
=============  ==============================================================

Also: ``finish_reason="content_filter"`` raises ``openai.ContentFilterFinishReasonError``
(not injected here); other 4xx map to ``BadRequestError`` (400),
``PermissionDeniedError`` (403), ``NotFoundError`` (404), ``UnprocessableEntityError`` (422);
no server at all raises ``openai.APIConnectionError``.
"""

from __future__ import annotations

import contextlib
import json
import math
import secrets
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, NamedTuple

__all__ = [
    "FAULT_KINDS",
    "FakeOpenAI",
    "RecordedRequest",
    "Responder",
    "default_responder",
    "instance_for_schema",
    "requested_schema",
]

Responder = Callable[[dict[str, Any]], "dict[str, Any] | str"]

FAULT_KINDS = frozenset({"timeout", "rate_limit", "server_error", "refusal", "garbage", "auth", "length"})

DEFAULT_TEXT = "Thanks for flagging this, we are looking into it now."
REFUSAL_TEXT = "I'm sorry, but I can't assist with that request."
GARBAGE_TEXT = "Sure! Here is a draft reply: we hear you and we are on it."
CHAT_PATH = "/v1/chat/completions"
RESPONSES_PATH = "/v1/responses"
MODELS_PATH = "/v1/models"
_MAX_DEPTH = 8
_FORMAT_SAMPLES = {
    "date-time": "2024-01-01T00:00:00Z",
    "date": "2024-01-01",
    "time": "00:00:00",
    "duration": "PT0S",
    "email": "comms@example.com",
    "uri": "https://example.com/",
    "url": "https://example.com/",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "ipv4": "127.0.0.1",
    "ipv6": "::1",
    "hostname": "example.com",
}


_NO_KEY_MESSAGE = (
    "You didn't provide an API key. You need to provide your API key in an Authorization header using "
    "Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if "
    "you're accessing the API from your browser and are prompted for a username and password. You can "
    "obtain an API key from https://platform.openai.com/account/api-keys."
)
_BAD_JSON_MESSAGE = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your "
    "HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)"
)
_SERVER_ERROR_MESSAGE = "The server had an error while processing your request. Sorry about that!"
_STALL = -1  # internal status: hold the request for ``timeout_delay``

# (HTTP status, JSON body, extra headers)
_Reply = tuple[int, Any, dict[str, str]]


class RecordedRequest(NamedTuple):
    """One request the server received; unpacks as ``(path, body, headers)``."""

    path: str
    body: Any
    headers: dict[str, str]


# --------------------------------------------------------------------------- schema


def requested_schema(request: Mapping[str, Any]) -> dict[str, Any] | None:
    """The JSON schema a chat (``response_format``) or responses (``text.format``) request asks for."""
    response_format = request.get("response_format")
    if isinstance(response_format, Mapping) and response_format.get("type") == "json_schema":
        json_schema = response_format.get("json_schema") or {}
        schema = json_schema.get("schema") if isinstance(json_schema, Mapping) else None
        return dict(schema) if isinstance(schema, Mapping) else {}
    text = request.get("text")
    fmt = text.get("format") if isinstance(text, Mapping) else None
    if isinstance(fmt, Mapping) and fmt.get("type") == "json_schema":
        schema = fmt.get("schema")
        return dict(schema) if isinstance(schema, Mapping) else {}
    return None


def instance_for_schema(schema: Mapping[str, Any], root: Mapping[str, Any] | None = None) -> Any:
    """Build a small valid instance of a JSON schema.

    Strings get a short sentence (or a sample for known ``format``s), enums their
    first value, numbers 0 (clamped to the bounds), arrays one item (``minItems``
    if larger), objects their required properties; ``$ref``/``$defs``,
    ``anyOf``/``oneOf`` (null only when nothing else fits) and ``allOf`` are followed.
    """
    return _instance(schema, root if root is not None else schema, 0)


def _resolve_ref(ref: str, root: Mapping[str, Any]) -> Mapping[str, Any]:
    if not ref.startswith("#"):
        raise ValueError(f"FakeOpenAI only resolves local $refs, got {ref!r}")
    node: Mapping[str, Any] = root
    for part in ref.lstrip("#").strip("/").split("/"):
        if part:
            node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _is_null(schema: Any) -> bool:
    return isinstance(schema, Mapping) and (schema.get("type") == "null" or schema.get("const", 0) is None)


def _instance(schema: Any, root: Mapping[str, Any], depth: int) -> Any:
    if not isinstance(schema, Mapping):
        return DEFAULT_TEXT  # `true` schema: anything goes
    if "$ref" in schema:
        merged = {**_resolve_ref(schema["$ref"], root), **{k: v for k, v in schema.items() if k != "$ref"}}
        return _instance(merged, root, depth + 1)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    if "default" in schema and depth >= _MAX_DEPTH:
        return schema["default"]
    for key in ("anyOf", "oneOf"):
        variants = schema.get(key)
        if variants:
            non_null = [v for v in variants if not _is_null(v)]
            if not non_null or (depth >= _MAX_DEPTH and len(non_null) < len(variants)):
                return None
            return _instance(non_null[0], root, depth + 1)
    if schema.get("allOf"):
        merged = {k: v for k, v in schema.items() if k != "allOf"}
        for part in schema["allOf"]:
            part = _resolve_ref(part["$ref"], root) if "$ref" in part else part
            merged.update(part)
        return _instance(merged, root, depth + 1)

    kind = schema.get("type")
    if isinstance(kind, list):
        non_null_kinds = [k for k in kind if k != "null"]
        if not non_null_kinds or depth >= _MAX_DEPTH and "null" in kind:
            return None
        kind = non_null_kinds[0]
    if kind is None:
        kind = "object" if "properties" in schema else "array" if "items" in schema else "string"

    if kind == "object":
        properties: Mapping[str, Any] = schema.get("properties") or {}
        required = schema.get("required", [])
        return {name: _instance(properties.get(name, {}), root, depth + 1) for name in required}
    if kind == "array":
        return _array_instance(schema, root, depth)
    if kind == "string":
        return _string_instance(schema)
    if kind in ("integer", "number"):
        return _number_instance(schema, integer=kind == "integer")
    if kind == "boolean":
        return False
    if kind == "null":
        return None
    raise ValueError(f"FakeOpenAI cannot build an instance of schema type {kind!r}")


def _array_instance(schema: Mapping[str, Any], root: Mapping[str, Any], depth: int) -> list[Any]:
    prefix = schema.get("prefixItems") or []
    items = [_instance(item, root, depth + 1) for item in prefix]
    wanted = max(int(schema.get("minItems", 0)), 0 if depth >= _MAX_DEPTH else 1)
    if "maxItems" in schema:
        wanted = min(wanted, int(schema["maxItems"]))
    item_schema = schema.get("items", {})
    while len(items) < wanted and item_schema is not False:
        items.append(_instance(item_schema, root, depth + 1))
    return items


def _string_instance(schema: Mapping[str, Any]) -> str:
    text = _FORMAT_SAMPLES.get(str(schema.get("format")), DEFAULT_TEXT)
    min_length = int(schema.get("minLength", 0))
    if len(text) < min_length:
        text = (text + " ") * (min_length // (len(text) + 1) + 1)
    if "maxLength" in schema:
        text = text[: int(schema["maxLength"])]
    return text


def _number_instance(schema: Mapping[str, Any], *, integer: bool) -> int | float:
    step = 1 if integer else 0.5
    low = float(schema.get("minimum", schema.get("exclusiveMinimum", -math.inf)))
    if "exclusiveMinimum" in schema and "minimum" not in schema:
        low += step
    high = float(schema.get("maximum", schema.get("exclusiveMaximum", math.inf)))
    if "exclusiveMaximum" in schema and "maximum" not in schema:
        high -= step
    value = min(max(0.0, low), high)
    if integer:
        return math.ceil(value) if value == low else math.floor(value)
    return float(value)


def default_responder(request: dict[str, Any]) -> dict[str, Any] | str:
    """A valid instance of the requested schema, or a short sentence for a plain-text request."""
    schema = requested_schema(request)
    if schema is None:
        return DEFAULT_TEXT
    instance: dict[str, Any] | str = instance_for_schema(schema)
    return instance


# --------------------------------------------------------------------------- messages


def _flatten(content: Any) -> str:
    """Text of a message's content: a string, or the text parts of a content list."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, Mapping):
                text = part.get("text", part.get("refusal"))
                if isinstance(text, str):
                    parts.append(text)
        return "\n".join(parts)
    return str(content)


def _messages_of(body: Mapping[str, Any]) -> list[dict[str, str]]:
    if "messages" in body:
        return [
            {"role": str(m.get("role", "")), "content": _flatten(m.get("content"))}
            for m in body.get("messages") or []
            if isinstance(m, Mapping)
        ]
    messages: list[dict[str, str]] = []
    if isinstance(body.get("instructions"), str):
        messages.append({"role": "system", "content": body["instructions"]})
    given = body.get("input")
    if isinstance(given, str):
        messages.append({"role": "user", "content": given})
    elif isinstance(given, list):
        messages.extend(
            {"role": str(item["role"]), "content": _flatten(item.get("content"))}
            for item in given
            if isinstance(item, Mapping) and "role" in item
        )
    return messages


def _missing(param: str) -> dict[str, Any]:
    return _error_body(
        f"Missing required parameter: '{param}'.",
        "invalid_request_error",
        code="missing_required_parameter",
        param=param,
    )


def _count_tokens(text: str) -> int:
    return max(1, len(text) // 4)


def _error_body(
    message: str, type_: str, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    """The error envelope the API uses for every 4xx/5xx."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


# --------------------------------------------------------------------------- server


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    # Don't join handler threads on close: one may be sleeping out a "timeout" fault.
    block_on_close = False
    fake: FakeOpenAI

    def __init__(self, address: tuple[str, int], fake: FakeOpenAI) -> None:
        self.fake = fake
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def close_connections(self) -> None:
        """Hang up kept-alive connections, so a pooled client connection can't outlive ``stop()``."""
        with self.connections_lock:
            connections, self.connections = self.connections, set()
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet when a client hangs up (it does so on every injected timeout)."""
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeOpenAI/1.0"
    timeout = 10  # idle keep-alive connections end by themselves
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Keep test output clean."""

    def do_GET(self) -> None:
        self.server.fake._handle(self, "GET")

    def do_POST(self) -> None:
        self.server.fake._handle(self, "POST")

    def send_json(self, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
        """Write a JSON response; a client that already hung up is ignored."""
        data = json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            self.close_connection = True


class FakeOpenAI:
    """An OpenAI-compatible server on 127.0.0.1 for tests (see the module docstring)."""

    def __init__(
        self,
        responder: Responder | None = None,
        *,
        api_key: str | None = None,
        timeout_delay: float = 2.0,
        retry_after: float | None = 0.05,
        models: list[str] | None = None,
    ) -> None:
        """Configure the server; ``start()`` (or ``with``) binds it.

        ``api_key``: when set, any other bearer key answers 401 ``invalid_api_key``.
        ``timeout_delay``: seconds a ``"timeout"`` fault stalls before answering normally.
        ``retry_after``: seconds advertised on 429s (``retry-after-ms`` and a rounded-up
        ``retry-after``); ``None`` omits the headers so the client uses its own backoff.
        """
        self.responder: Responder = responder or default_responder
        self.refusal_text = REFUSAL_TEXT
        self.api_key = api_key
        self.timeout_delay = timeout_delay
        self.retry_after = retry_after
        self.models = models or ["gpt-4o-mini", "gpt-4.1-mini", "gpt-5-mini"]
        self.requests: list[RecordedRequest] = []
        self.faults_served: list[str] = []
        self.errors: list[BaseException] = []
        self._faults: deque[str] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle

    def start(self) -> FakeOpenAI:
        """Bind 127.0.0.1 on a free port and serve from a daemon thread."""
        if self._httpd is not None:
            raise RuntimeError("FakeOpenAI is already running")
        self._stopping.clear()
        httpd = _HTTPServer(("127.0.0.1", 0), self)
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="FakeOpenAI", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; wakes any request stalled by a ``"timeout"`` fault."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stopping.set()
        httpd.shutdown()
        httpd.server_close()
        httpd.close_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound port."""
        if self._httpd is None:
            raise RuntimeError("FakeOpenAI is not running; call start()")
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """What ``openai.OpenAI(base_url=...)`` (or ``OPENAI_BASE_URL``) takes."""
        return f"http://127.0.0.1:{self.port}/v1"

    # ---- test controls

    def fail_next(self, kind: str, times: int = 1) -> None:
        """Make the next ``times`` generation requests fail with ``kind`` (queued after earlier faults)."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {sorted(FAULT_KINDS)}")
        if times < 1:
            raise ValueError("times must be at least 1")
        with self._lock:
            self._faults.extend([kind] * times)

    def reset(self) -> None:
        """Forget recorded requests, served and pending faults, and restore the default responder."""
        with self._lock:
            self.requests.clear()
            self.faults_served.clear()
            self.errors.clear()
            self._faults.clear()
        self.responder = default_responder

    def generation_requests(self) -> list[RecordedRequest]:
        """Recorded chat-completions and responses requests, oldest first."""
        with self._lock:
            return [r for r in self.requests if r.path in (CHAT_PATH, RESPONSES_PATH)]

    def last_request(self) -> RecordedRequest:
        """The most recent chat-completions or responses request."""
        found = self.generation_requests()
        if not found:
            raise LookupError("FakeOpenAI has received no chat or responses request")
        return found[-1]

    def last_messages(self) -> list[dict[str, str]]:
        """The last generation request's messages as ``{role, content}`` with text content."""
        return _messages_of(self.last_request().body)

    # ---- request handling

    def _handle(self, handler: _Handler, method: str) -> None:
        path = handler.path.split("?", 1)[0].rstrip("/")
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        headers = {name.lower(): value for name, value in handler.headers.items()}
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        if self._stopping.is_set():
            handler.close_connection = True
            return
        with self._lock:
            self.requests.append(RecordedRequest(path, body, headers))

        try:
            status, payload, extra = self._route(method, path, body, headers)
            if status == _STALL:  # a "timeout" fault: stall, then answer normally unless stopping
                if self._stopping.wait(self.timeout_delay):
                    handler.close_connection = True
                    return
                status, payload, extra = self._generate(path, body, fault=None)
        except Exception as exc:  # a broken responder: fail loudly, and tell the client not to retry
            with self._lock:
                self.errors.append(exc)
            status, extra = 500, {"x-should-retry": "false"}
            payload = _error_body(f"FakeOpenAI responder raised {exc!r}", "fake_openai_error")
        base = {
            "x-request-id": f"req_{secrets.token_hex(16)}",
            "openai-version": "2020-10-01",
            "openai-processing-ms": "12",
        }
        handler.send_json(status, payload, {**base, **extra})

    def _route(self, method: str, path: str, body: Any, headers: Mapping[str, str]) -> _Reply:
        known = {(method, p) for p in (CHAT_PATH, RESPONSES_PATH)} | {("GET", MODELS_PATH)}
        if (method, path) not in known:
            return 404, _error_body(f"Invalid URL ({method} {path})", "invalid_request_error"), {}
        auth = self._check_auth(headers)
        if auth is not None:
            return auth
        if method == "GET":
            return 200, self._models_body(), {}
        if not isinstance(body, dict):
            return 400, _error_body(_BAD_JSON_MESSAGE, "invalid_request_error"), {}
        invalid = self._validate(path, body)
        if invalid is not None:
            return 400, invalid, {}
        with self._lock:
            fault = self._faults.popleft() if self._faults else None
            if fault is not None:
                self.faults_served.append(fault)
        if fault == "timeout":
            return _STALL, None, {}
        return self._generate(path, body, fault)

    def _check_auth(self, headers: Mapping[str, str]) -> _Reply | None:
        scheme, _, key = headers.get("authorization", "").partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            return 401, _error_body(_NO_KEY_MESSAGE, "invalid_request_error"), {}
        if self.api_key is not None and key != self.api_key:
            return self._invalid_key(key)
        return None

    @staticmethod
    def _invalid_key(key: str) -> _Reply:
        shown = f"{key[:3]}{'*' * max(len(key) - 7, 0)}{key[-4:]}" if len(key) > 7 else key
        message = (
            f"Incorrect API key provided: {shown}. "
            "You can find your API key at https://platform.openai.com/account/api-keys."
        )
        return 401, _error_body(message, "invalid_request_error", code="invalid_api_key"), {}

    @staticmethod
    def _validate(path: str, body: Mapping[str, Any]) -> dict[str, Any] | None:
        if not body.get("model"):
            return _error_body("you must provide a model parameter", "invalid_request_error")
        if body.get("stream"):
            message = "FakeOpenAI does not stream; use a non-streaming call"
            return _error_body(message, "invalid_request_error", param="stream")
        if path == CHAT_PATH and not body.get("messages"):
            return _missing("messages")
        starts = ("input", "previous_response_id", "prompt", "conversation")
        if path == RESPONSES_PATH and not any(key in body for key in starts):
            return _missing("input")
        return None

    def _generate(self, path: str, body: dict[str, Any], fault: str | None) -> _Reply:
        model = str(body["model"])
        if fault == "rate_limit":
            return self._rate_limited(model)
        if fault == "server_error":
            return 500, _error_body(_SERVER_ERROR_MESSAGE, "server_error"), {}
        if fault == "auth":
            return self._invalid_key("sk-revoked-test-key")

        refusal: str | None = None
        finish_reason = "stop"
        if fault == "refusal":
            text, refusal = "", self.refusal_text
        elif fault == "garbage":
            text = GARBAGE_TEXT
        else:
            reply = self.responder(body)
            text = reply if isinstance(reply, str) else json.dumps(reply)
            if fault == "length":
                text, finish_reason = text[: max(1, len(text) // 2)], "length"

        prompt_tokens = _count_tokens(json.dumps(_messages_of(body)))
        output_tokens = _count_tokens(text or refusal or "")
        build = _chat_body if path == CHAT_PATH else _response_body
        payload = build(body, model, text, refusal, finish_reason, prompt_tokens, output_tokens)
        return 200, payload, self._ratelimit_headers(remaining_tokens=200_000 - prompt_tokens)

    def _rate_limited(self, model: str) -> _Reply:
        wait_ms = round((self.retry_after or 0.0) * 1000)
        headers = self._ratelimit_headers(remaining_tokens=0, reset_tokens=f"{wait_ms}ms")
        if self.retry_after is not None:
            headers["retry-after"] = str(max(1, math.ceil(self.retry_after)))
            headers["retry-after-ms"] = str(wait_ms)
        message = (
            f"Rate limit reached for {model} in organization org-fakeopenai on tokens per min (TPM): "
            f"Limit 200000, Used 199500, Requested 1200. Please try again in {wait_ms}ms. "
            "Visit https://platform.openai.com/account/rate-limits to learn more."
        )
        return 429, _error_body(message, "tokens", code="rate_limit_exceeded"), headers

    @staticmethod
    def _ratelimit_headers(remaining_tokens: int, reset_tokens: str = "0s") -> dict[str, str]:
        return {
            "x-ratelimit-limit-requests": "10000",
            "x-ratelimit-limit-tokens": "200000",
            "x-ratelimit-remaining-requests": "9999",
            "x-ratelimit-remaining-tokens": str(max(remaining_tokens, 0)),
            "x-ratelimit-reset-requests": "6ms",
            "x-ratelimit-reset-tokens": reset_tokens,
        }

    def _models_body(self) -> dict[str, Any]:
        created = 1721172741
        data = [{"id": m, "object": "model", "created": created, "owned_by": "system"} for m in self.models]
        return {"object": "list", "data": data}


def _usage_chat(prompt_tokens: int, output_tokens: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": output_tokens,
        "total_tokens": prompt_tokens + output_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _chat_body(
    body: Mapping[str, Any],
    model: str,
    text: str,
    refusal: str | None,
    finish_reason: str,
    prompt_tokens: int,
    output_tokens: int,
) -> dict[str, Any]:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    return {
        "id": "chatcmpl-" + "".join(secrets.choice(alphabet) for _ in range(29)),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": None if refusal is not None else text,
                    "refusal": refusal,
                    "annotations": [],
                },
                "logprobs": None,
                "finish_reason": finish_reason,
            }
        ],
        "usage": _usage_chat(prompt_tokens, output_tokens),
        "service_tier": body.get("service_tier") or "default",
        "system_fingerprint": f"fp_{secrets.token_hex(5)}",
    }


def _response_body(
    body: Mapping[str, Any],
    model: str,
    text: str,
    refusal: str | None,
    finish_reason: str,
    prompt_tokens: int,
    output_tokens: int,
) -> dict[str, Any]:
    now = int(time.time())
    incomplete = finish_reason == "length"
    part: dict[str, Any] = (
        {"type": "refusal", "refusal": refusal}
        if refusal is not None
        else {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
    )
    return {
        "id": f"resp_{secrets.token_hex(24)}",
        "object": "response",
        "created_at": now,
        "status": "incomplete" if incomplete else "completed",
        "background": False,
        "completed_at": None if incomplete else now,
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if incomplete else None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "max_tool_calls": body.get("max_tool_calls"),
        "model": model,
        "output": [
            {
                "id": f"msg_{secrets.token_hex(24)}",
                "type": "message",
                "status": "incomplete" if incomplete else "completed",
                "content": [part],
                "role": "assistant",
            }
        ],
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "prompt_cache_key": body.get("prompt_cache_key"),
        "reasoning": {"effort": None, "summary": None},
        "safety_identifier": body.get("safety_identifier"),
        "service_tier": body.get("service_tier") or "default",
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": {"format": {"type": "text"}, "verbosity": "medium", **(body.get("text") or {})},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools", []),
        "top_logprobs": body.get("top_logprobs", 0),
        "top_p": body.get("top_p", 1.0),
        "truncation": body.get("truncation", "disabled"),
        "usage": {
            "input_tokens": prompt_tokens,
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": prompt_tokens + output_tokens,
        },
        "user": body.get("user"),
        "metadata": body.get("metadata") or {},
    }
