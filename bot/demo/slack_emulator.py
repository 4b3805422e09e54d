"""A Slack Web API emulator served over real HTTP, for tests and the offline ``warroom demo``.

Point a ``slack_sdk.WebClient(base_url=emu.api_url)`` (or ``SLACK_API_URL``) at it and the app talks to
it exactly as it talks to Slack: same methods, same request encodings, same JSON shapes, same error
codes. Channels, messages, users, views and files live in memory; every call is recorded; faults
(errors, 429s, 5xx, dropped connections) can be injected per method; and every Block Kit payload is
checked against the ``slack_sdk.models`` classes plus the documented limits those classes do not
enforce, so a payload Slack would refuse fails here too (and lands in ``emu.errors``).

Choices where Slack's behaviour could not be reproduced exactly:

* Any token starting with ``xoxb-`` is valid; anything else is ``invalid_auth``.
* ``trigger_id``: one minted by :meth:`SlackEmulator.trigger_id` is valid once, for 3 seconds
  (then ``exchanged_trigger_id`` / ``expired_trigger_id``). An id the emulator never minted is
  accepted once, unless it starts with ``expired`` (then ``expired_trigger_id``).
* ``chat.postMessage`` needs the bot in the channel (``not_in_channel``), as without the
  ``chat:write.public`` scope. Posting to a user id opens a DM with that user.
* No system messages (joins, topic changes) are added to channels: ``messages`` holds only what
  was posted, so tests can count them. Each message keeps ``edits`` (every chat.update or
  replace_original, newest last); deleted ones move to ``Channel.deleted``.
* Channel names are ASCII only (Slack also takes some non-Latin letters).
* Users must exist (:meth:`SlackEmulator.add_user`) to be invited, looked up or DM'd.
* ``response_url``: 5 uses, no expiry; an unknown token answers 404 ``no_service``.
* Pseudo-methods ``"response_url"`` and ``"file_upload"`` accept injected faults too.

Everything here is stdlib plus slack_sdk, so the demo can run it in-process.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import email.parser
import email.policy
import inspect
import json
import logging
import mimetypes
import random
import re
import secrets
import socket
import string
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal, TypeVar
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

from slack_sdk.models.basic_objects import JsonObject
from slack_sdk.models.blocks import Block, ConfirmObject, DividerBlock, Option, OptionGroup
from slack_sdk.models.views import View

log = logging.getLogger(__name__)

T = TypeVar("T")

# Documented Slack limits that slack_sdk.models does not enforce (the models check the rest).
MESSAGE_MAX_BLOCKS = 50
VIEW_MAX_BLOCKS = 100
MESSAGE_TEXT_MAX_CHARS = 40_000
SECTION_FIELD_MAX_CHARS = 2_000
TEXT_INPUT_MAX_LENGTH = 3_000
VIEW_MAX_BYTES = 250 * 1024
CHANNEL_NAME_MAX_CHARS = 80
TOPIC_MAX = 250
PURPOSE_MAX = 250
INVITE_MAX_USERS = 1000
TRIGGER_TTL_SECONDS = 3.0
RESPONSE_URL_MAX_USES = 5
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000

# Fields Slack takes as JSON strings in form-encoded requests; recorded decoded.
_JSON_FIELDS = ("blocks", "attachments", "view", "files", "metadata")
_CHANNEL_NAME = re.compile(r"^[a-z0-9_-]+$")
_EMOJI_NAME = re.compile(r"^[a-z0-9_+'-]+$")
_ID_ALPHABET = string.ascii_uppercase + string.digits

FaultKind = Literal["fail", "rate_limit", "server_error", "drop_connection"]


@dataclass(frozen=True)
class Call:
    """One request the emulator received: the method, its decoded arguments (no token), when."""

    method: str
    args: dict[str, Any]
    at: float


@dataclass
class Channel:
    """A conversation and everything in it; the emulator's source of truth."""

    id: str
    name: str
    is_private: bool = False
    members: set[str] = field(default_factory=set)
    topic: str = ""
    purpose: str = ""
    messages: list[dict[str, Any]] = field(default_factory=list)
    pins: list[str] = field(default_factory=list)
    deleted: list[dict[str, Any]] = field(default_factory=list)
    created: int = field(default_factory=lambda: int(time.time()))
    creator: str = ""
    is_archived: bool = False
    is_im: bool = False
    is_mpim: bool = False

    def message(self, ts: str) -> dict[str, Any] | None:
        """The message with this ts (thread replies included), or None."""
        return next((m for m in self.messages if m["ts"] == ts), None)


@dataclass
class _Fault:
    kind: FaultKind
    remaining: int
    error: str = ""
    status: int = 500
    retry_after: int = 1


@dataclass
class _ResponseUrl:
    channel_id: str | None
    user_id: str | None
    message_ts: str | None
    uses: int = 0


@dataclass(frozen=True)
class _Reply:
    status: int
    body: bytes
    content_type: str = "application/json; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()


class _ApiError(Exception):
    """A Slack error answer: ``{"ok": false, "error": error, **extra}``."""

    def __init__(self, error: str, *, status: int = 200, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.status = status
        self.extra = extra


def _invalid_arguments(message: str) -> _ApiError:
    return _ApiError("invalid_arguments", response_metadata={"messages": [f"[ERROR] {message}"]})


# --------------------------------------------------------------------------------------------
# Block Kit validation
# --------------------------------------------------------------------------------------------

# Objects whose slack_sdk model reports no attributes (they serialise themselves).
_OPAQUE_OBJECT_KEYS: dict[type, frozenset[str]] = {
    Option: frozenset({"text", "value", "description", "url"}),
    OptionGroup: frozenset({"label", "options"}),
    ConfirmObject: frozenset({"title", "text", "confirm", "deny", "style"}),
}
# Where Slack accepts only plain_text text objects (the models also accept mrkdwn there).
_PLAIN_TEXT_ONLY: dict[str, tuple[str, ...]] = {
    "header": ("text",),
    "button": ("text",),
    "input": ("label", "hint"),
    "modal": ("title", "submit", "close"),
    "home": ("title", "submit", "close"),
}
_CONFIRM_PLAIN_TEXT = ("title", "confirm", "deny")
_PLAIN_TEXT_OPTIONS = frozenset({"static_select", "multi_static_select", "overflow"})


def _problem(message: str, pointer: str) -> str:
    return f"{message} [json-pointer:{pointer}]"


def find_block_kit_problems(
    blocks: Any, *, max_blocks: int = MESSAGE_MAX_BLOCKS, pointer: str = "/blocks"
) -> list[str]:
    """Everything Slack would reject in a list of blocks, as Slack-style messages; [] when valid."""
    if not isinstance(blocks, list):
        return [_problem("must be an array", pointer)]
    problems: list[str] = []
    if len(blocks) > max_blocks:
        problems.append(_problem(f"no more than {max_blocks} items allowed", pointer))
    block_ids: set[str] = set()
    for index, raw in enumerate(blocks):
        here = f"{pointer}/{index}"
        if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
            problems.append(_problem("must be an object with a type", here))
            continue
        problems.extend(_block_problems(raw, here))
        block_id = raw.get("block_id")
        if isinstance(block_id, str):
            if block_id in block_ids:
                problems.append(_problem(f"duplicate block_id '{block_id}'", f"{here}/block_id"))
            block_ids.add(block_id)
    return problems


def find_view_problems(view: Any, *, expected_type: str | None = None, pointer: str = "/view") -> list[str]:
    """Everything Slack would reject in a modal or Home tab view; [] when valid."""
    if not isinstance(view, dict):
        return [_problem("must be an object", pointer)]
    problems: list[str] = []
    view_type = view.get("type")
    if view_type not in ("modal", "home"):
        problems.append(_problem("type must be modal or home", f"{pointer}/type"))
    elif expected_type is not None and view_type != expected_type:
        problems.append(_problem(f"type must be {expected_type}", f"{pointer}/type"))
    if view_type == "modal" and not view.get("title"):
        problems.append(_problem("missing required field: title", pointer))
    blocks = view.get("blocks")
    if blocks is None:
        problems.append(_problem("missing required field: blocks", pointer))
    elif isinstance(blocks, list) and not blocks:
        problems.append(_problem("must provide at least 1 item", f"{pointer}/blocks"))
    rest = {key: value for key, value in view.items() if key != "blocks"}
    try:
        # The blocks are checked one by one below; a stand-in keeps the model's block count rule quiet.
        model = View(**rest, blocks=[DividerBlock()])
        model.to_dict()
    except Exception as exc:  # the models raise several exception types for bad input
        problems.append(_problem(str(exc), pointer))
    else:
        problems.extend(_shape_problems(rest, model, pointer))
    problems.extend(_raw_rule_problems(rest, pointer))
    if blocks is not None:
        problems.extend(find_block_kit_problems(blocks, max_blocks=VIEW_MAX_BLOCKS,
                                                pointer=f"{pointer}/blocks"))
    return problems


def _block_problems(raw: dict[str, Any], pointer: str) -> list[str]:
    try:
        block = Block.parse(copy.deepcopy(raw))
    except Exception as exc:
        return [_problem(f"invalid {raw['type']} block: {exc}", pointer)]
    if block is None:
        return [_problem(f"unsupported block type '{raw['type']}'", f"{pointer}/type")]
    problems: list[str] = []
    try:
        block.to_dict()  # validates the block and, through to_dict, everything nested in it
    except Exception as exc:
        problems.append(_problem(str(exc), pointer))
    problems.extend(_shape_problems(raw, block, pointer))
    problems.extend(_raw_rule_problems(raw, pointer))
    if raw["type"] == "section":
        for index, text in enumerate(raw.get("fields") or []):
            if isinstance(text, dict) and len(str(text.get("text", ""))) > SECTION_FIELD_MAX_CHARS:
                problems.append(_problem(f"must be less than {SECTION_FIELD_MAX_CHARS + 1} characters",
                                         f"{pointer}/fields/{index}/text"))
    if raw["type"] in ("actions", "context") and not raw.get("elements"):
        problems.append(_problem("must provide at least 1 item", f"{pointer}/elements"))
    if raw["type"] == "actions":
        action_ids: set[str] = set()
        for index, element in enumerate(raw.get("elements") or []):
            action_id = element.get("action_id") if isinstance(element, dict) else None
            if isinstance(action_id, str):
                if action_id in action_ids:
                    problems.append(_problem(f"duplicate action_id '{action_id}'",
                                             f"{pointer}/elements/{index}/action_id"))
                action_ids.add(action_id)
    return problems


def _shape_problems(raw: dict[str, Any], model: JsonObject, pointer: str) -> Iterator[str]:
    """Fields the model does not know, and strings where Slack wants an object."""
    opaque_keys = _OPAQUE_OBJECT_KEYS.get(type(model))
    known = opaque_keys if opaque_keys is not None else model.attributes
    for key, value in raw.items():
        here = f"{pointer}/{key}"
        if key not in known:
            yield _problem(f"unsupported field '{key}'", here)
        elif opaque_keys is None:
            yield from _child_shape_problems(value, model.get_object_attribute(key), here)


def _child_shape_problems(value: Any, child: Any, pointer: str) -> Iterator[str]:
    if isinstance(child, JsonObject):
        if isinstance(value, dict):
            yield from _shape_problems(value, child, pointer)
        else:
            yield _problem("must be an object", pointer)
    elif isinstance(child, list | tuple) and isinstance(value, list):
        for index, (item, parsed) in enumerate(zip(value, child, strict=False)):
            if parsed is None and isinstance(item, dict):
                yield _problem(f"unsupported element type '{item.get('type')}'", f"{pointer}/{index}")
            else:
                yield from _child_shape_problems(item, parsed, f"{pointer}/{index}")


def _raw_rule_problems(node: Any, pointer: str, parent_key: str = "") -> Iterator[str]:
    """Rules checked on the raw JSON: plain_text-only fields and text input lengths."""
    if isinstance(node, list):
        for index, item in enumerate(node):
            yield from _raw_rule_problems(item, f"{pointer}/{index}", parent_key)
        return
    if not isinstance(node, dict):
        return
    node_type = node.get("type")
    plain_only = _PLAIN_TEXT_ONLY.get(node_type, ()) if isinstance(node_type, str) else ()
    if parent_key == "confirm":
        plain_only = _CONFIRM_PLAIN_TEXT
    for key in (*plain_only, "placeholder"):
        value = node.get(key)
        if isinstance(value, dict) and value.get("type") != "plain_text":
            yield _problem("must be a plain_text text object", f"{pointer}/{key}/type")
    if node_type in _PLAIN_TEXT_OPTIONS:
        for index, option in enumerate(node.get("options") or []):
            text = option.get("text") if isinstance(option, dict) else None
            if isinstance(text, dict) and text.get("type") != "plain_text":
                yield _problem("must be a plain_text text object", f"{pointer}/options/{index}/text/type")
    if node_type == "plain_text_input":
        yield from _text_input_problems(node, pointer)
    for key, value in node.items():
        yield from _raw_rule_problems(value, f"{pointer}/{key}", key)


def _text_input_problems(node: dict[str, Any], pointer: str) -> Iterator[str]:
    min_length, max_length = node.get("min_length"), node.get("max_length")
    for key, value, lowest in (("min_length", min_length, 0), ("max_length", max_length, 1)):
        if value is not None and not (isinstance(value, int) and lowest <= value <= TEXT_INPUT_MAX_LENGTH):
            yield _problem(f"must be between {lowest} and {TEXT_INPUT_MAX_LENGTH}", f"{pointer}/{key}")
    if isinstance(min_length, int) and isinstance(max_length, int) and min_length > max_length:
        yield _problem("min_length must not exceed max_length", f"{pointer}/min_length")
    initial = node.get("initial_value")
    if isinstance(initial, str) and isinstance(max_length, int) and len(initial) > max_length:
        yield _problem("initial_value is longer than max_length", f"{pointer}/initial_value")


# --------------------------------------------------------------------------------------------
# Request parsing
# --------------------------------------------------------------------------------------------


def _parse_args(content_type: str, body: bytes, query: str) -> dict[str, Any]:
    """Arguments from the query string and a form, multipart or JSON body, JSON fields decoded."""
    query_args = parse_qs(query, keep_blank_values=True)
    args: dict[str, Any] = {key: values[-1] for key, values in query_args.items()}
    media_type = content_type.split(";")[0].strip().lower()
    if media_type == "application/json" and body.strip():
        try:
            data = json.loads(body)
        except ValueError as exc:
            raise _ApiError("invalid_json") from exc
        if not isinstance(data, dict):
            raise _ApiError("json_not_object")
        args.update(data)
    elif media_type == "multipart/form-data":
        header = f"Content-Type: {content_type}\r\n\r\n".encode()
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(header + body)
        if not message.is_multipart():
            raise _ApiError("invalid_form_data")
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            if isinstance(name, str) and isinstance(payload, bytes):
                args[name] = payload if part.get_filename() else payload.decode("utf-8")
    elif body:
        try:
            form = parse_qs(body.decode("utf-8"), keep_blank_values=True)
        except UnicodeDecodeError as exc:
            raise _ApiError("invalid_form_data") from exc
        args.update({key: values[-1] for key, values in form.items()})
    for name in _JSON_FIELDS:
        value = args.get(name)
        if isinstance(value, str) and value.strip()[:1] in ("[", "{"):
            # Undecodable JSON stays a string; the method answers with its own format error.
            with contextlib.suppress(ValueError):
                args[name] = json.loads(value)
    return args


def _flag(value: Any) -> bool:
    """Slack booleans arrive as true/false, "true"/"false" or "1"/"0"."""
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes")
    return bool(value)


def _id_list(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(item).strip() for item in value if str(item).strip()]
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return []


def _json_reply(payload: dict[str, Any], status: int = 200,
                headers: tuple[tuple[str, str], ...] = ()) -> _Reply:
    return _Reply(status, json.dumps(payload).encode(), headers=headers)


def _text_reply(text: str, status: int = 200) -> _Reply:
    return _Reply(status, text.encode(), content_type="text/plain; charset=utf-8")


def _short(value: Any, limit: int = 70) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --------------------------------------------------------------------------------------------
# HTTP server
# --------------------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default 5 makes bursts of concurrent calls wait for SYN retries

    def __init__(self, emulator: SlackEmulator) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.emulator = emulator


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"  # one request per connection: a dropped connection stays simple

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        self._serve()

    def do_GET(self) -> None:  # noqa: N802
        self._serve()

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        reply = self.server.emulator._route(self.command, self.path, self.headers, body)
        if reply is None:  # an injected dropped connection: close without a byte of response
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(reply.body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        log.debug("slack emulator: " + format, *args)


# --------------------------------------------------------------------------------------------
# The emulator
# --------------------------------------------------------------------------------------------


class SlackEmulator:
    """An in-memory Slack workspace behind the real Web API, over HTTP on 127.0.0.1.

    State (read freely in tests): ``channels`` (id -> :class:`Channel`), ``users``, ``usergroups``,
    ``views`` (id -> the view as Slack stores it), ``files`` (uploads with their ``bytes``),
    ``opened_views`` (views.open/push payloads with ``trigger_id`` and ``user``), ``responses``
    (``(token, payload)`` posted to response URLs), ``calls`` (every :class:`Call`) and ``errors``
    (payloads Slack would refuse, and methods the emulator lacks: tests assert it stays ``[]``).
    """

    def __init__(
        self,
        bot_user_id: str = "UBOT",
        team_id: str = "T0001",
        *,
        bot_id: str = "B0001",
        app_id: str = "A0001",
        bot_name: str = "warroom",
        team_name: str = "War Room Test",
        team_domain: str = "warroom-test",
    ) -> None:
        self.bot_user_id = bot_user_id
        self.team_id = team_id
        self.bot_id = bot_id
        self.app_id = app_id
        self.bot_name = bot_name
        self.team_name = team_name
        self.team_domain = team_domain

        self.channels: dict[str, Channel] = {}
        self.users: dict[str, dict[str, Any]] = {}
        self.usergroups: dict[str, dict[str, Any]] = {}
        self.views: dict[str, dict[str, Any]] = {}
        self.calls: list[Call] = []
        self.errors: list[str] = []
        self.responses: list[tuple[str, dict[str, Any]]] = []
        self.files: list[dict[str, Any]] = []
        self.opened_views: list[dict[str, Any]] = []

        self._lock = threading.RLock()
        self._random = random.Random(team_id)  # ids are stable from run to run
        self._last_ts_us = 0
        self._faults: dict[str, list[_Fault]] = {}
        self._triggers: dict[str, float] = {}
        self._used_triggers: set[str] = set()
        self._trigger_users: dict[str, str | None] = {}
        self._response_urls: dict[str, _ResponseUrl] = {}
        self._ephemerals: list[dict[str, Any]] = []
        self._homes: dict[str, dict[str, Any]] = {}
        self._pending_uploads: dict[str, dict[str, Any]] = {}
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._methods: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "api.test": lambda args: {"args": args},
            "auth.test": self._auth_test,
            "team.info": self._team_info,
            "chat.postMessage": self._chat_post_message,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.update": self._chat_update,
            "chat.delete": self._chat_delete,
            "chat.getPermalink": self._chat_get_permalink,
            "conversations.create": self._conversations_create,
            "conversations.invite": self._conversations_invite,
            "conversations.join": self._conversations_join,
            "conversations.open": self._conversations_open,
            "conversations.archive": self._conversations_archive,
            "conversations.setTopic": lambda args: self._set_channel_text(args, "topic", TOPIC_MAX),
            "conversations.setPurpose": lambda args: self._set_channel_text(args, "purpose", PURPOSE_MAX),
            "conversations.info": self._conversations_info,
            "conversations.members": self._conversations_members,
            "conversations.history": self._conversations_history,
            "conversations.replies": self._conversations_replies,
            "conversations.list": self._conversations_list,
            "pins.add": self._pins_add,
            "pins.list": self._pins_list,
            "reactions.add": self._reactions_add,
            "users.info": self._users_info,
            "users.list": self._users_list,
            "users.lookupByEmail": self._users_lookup_by_email,
            "usergroups.list": self._usergroups_list,
            "usergroups.users.list": self._usergroups_users_list,
            "views.open": lambda args: self._views_open(args, "views.open"),
            "views.push": lambda args: self._views_open(args, "views.push"),
            "views.update": self._views_update,
            "views.publish": self._views_publish,
            "files.getUploadURLExternal": self._files_get_upload_url,
            "files.completeUploadExternal": self._files_complete_upload,
            "files.info": self._files_info,
            "files.upload": self._files_upload_v1,
        }
        self.add_user(bot_user_id, bot_name, real_name="War Room", is_bot=True)

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self) -> SlackEmulator:
        """Serve on a free port of 127.0.0.1 from a daemon thread; returns self."""
        if self._server is None:
            self._server = _Server(self)
            self._thread = threading.Thread(target=self._server.serve_forever, name="slack-emulator",
                                            kwargs={"poll_interval": 0.05}, daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and free the port."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            if self._thread is not None:
                self._thread.join(timeout=5)
            self._server, self._thread = None, None

    def __enter__(self) -> SlackEmulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` of the running emulator."""
        if self._server is None:
            raise RuntimeError("the Slack emulator is not started; call start() first")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def api_url(self) -> str:
        """The Web API base URL, with its trailing slash: what ``WebClient(base_url=...)`` wants."""
        return f"{self.base_url}/api/"

    # ---- seeding ---------------------------------------------------------------------------

    def add_user(
        self,
        user_id: str,
        name: str,
        *,
        real_name: str | None = None,
        tz: str = "UTC",
        email: str | None = None,
        is_bot: bool = False,
        is_admin: bool = False,
    ) -> dict[str, Any]:
        """Add (or replace) a workspace member; returns the ``users.info`` user object."""
        zone = ZoneInfo(tz)
        now = datetime.now(zone)
        offset = now.utcoffset()
        real = real_name or name
        user: dict[str, Any] = {
            "id": user_id,
            "team_id": self.team_id,
            "name": name,
            "deleted": False,
            "color": "9f69e7",
            "real_name": real,
            "tz": tz,
            "tz_label": now.tzname() or tz,
            "tz_offset": int(offset.total_seconds()) if offset else 0,
            "profile": {
                "real_name": real,
                "real_name_normalized": real,
                "display_name": name,
                "display_name_normalized": name,
                "email": email if email is not None else f"{name}@example.com",
                "image_48": f"https://avatars.example.com/{user_id}_48.png",
                "image_72": f"https://avatars.example.com/{user_id}_72.png",
                "team": self.team_id,
                **({"bot_id": self.bot_id} if is_bot else {}),
            },
            "is_admin": is_admin,
            "is_owner": False,
            "is_primary_owner": False,
            "is_restricted": False,
            "is_ultra_restricted": False,
            "is_bot": is_bot,
            "is_app_user": False,
            "updated": int(time.time()),
        }
        with self._lock:
            self.users[user_id] = user
        return user

    def add_usergroup(self, usergroup_id: str, handle: str, user_ids: Iterable[str], *,
                      name: str | None = None) -> dict[str, Any]:
        """Add (or replace) a user group (``S…`` id, ``@handle``) with these members."""
        users = list(user_ids)
        group: dict[str, Any] = {
            "id": usergroup_id,
            "team_id": self.team_id,
            "is_usergroup": True,
            "is_subteam": True,
            "name": name or handle,
            "description": "",
            "handle": handle,
            "is_external": False,
            "date_create": int(time.time()),
            "date_update": int(time.time()),
            "date_delete": 0,
            "created_by": self.bot_user_id,
            "users": users,
            "user_count": len(users),
        }
        with self._lock:
            self.usergroups[usergroup_id] = group
        return group

    def add_channel(
        self,
        name: str,
        members: Iterable[str] = (),
        *,
        is_private: bool = False,
        bot_member: bool = True,
        channel_id: str | None = None,
    ) -> str:
        """Seed a channel (the bot is a member unless ``bot_member=False``); returns its id."""
        error = self._channel_name_error(name)
        if error:
            raise ValueError(f"{error}: {name!r}")
        people = list(members)
        with self._lock:
            if self.channel_by_name(name) is not None:
                raise ValueError(f"name_taken: {name!r}")
            channel = Channel(
                id=channel_id or self._new_id("C"),
                name=name,
                is_private=is_private,
                members=set(people) | ({self.bot_user_id} if bot_member else set()),
                creator=people[0] if people else self.bot_user_id,
            )
            self.channels[channel.id] = channel
            return channel.id

    def join_channel(self, channel_id: str, user_id: str, *, inviter: str | None = None) -> dict[str, Any]:
        """A person joins a channel: they become a member, and the ``member_joined_channel`` event Slack
        sends subscribed apps is returned (send it with ``SlackClient.event``)."""
        with self._lock:
            channel = self.channels[channel_id]
            channel.members.add(user_id)
            event: dict[str, Any] = {"type": "member_joined_channel", "user": user_id, "channel": channel.id,
                                     "channel_type": "G" if channel.is_private else "C", "team": self.team_id}
            if inviter:
                event["inviter"] = inviter
            return event

    def add_message(self, channel_id: str, text: str, *, user: str,
                    blocks: list[dict[str, Any]] | None = None, thread_ts: str | None = None) -> str:
        """Seed a message a person posted (the bot's own come from chat.postMessage); returns its ts."""
        with self._lock:
            channel = self.channels[channel_id]
            message: dict[str, Any] = {"type": "message", "ts": self._next_ts(), "user": user, "text": text,
                                       "team": self.team_id, "edits": []}
            if blocks:
                message["blocks"] = blocks
            if thread_ts:
                message["thread_ts"] = thread_ts
            channel.messages.append(message)
            return str(message["ts"])

    # ---- test helpers ----------------------------------------------------------------------

    def channel_by_name(self, name: str) -> Channel | None:
        """The channel with this name (a leading ``#`` is ignored), or None."""
        name = name.lstrip("#")
        with self._lock:
            return next((c for c in self.channels.values() if c.name == name and not c.is_im), None)

    def messages(self, channel_id: str) -> list[dict[str, Any]]:
        """Copies of the channel's messages, oldest first, thread replies included."""
        with self._lock:
            if channel_id not in self.channels:
                raise KeyError(f"no channel {channel_id!r} in the emulator")
            return copy.deepcopy(self.channels[channel_id].messages)

    def dm_channel(self, user_id: str) -> Channel | None:
        """The bot's direct-message channel with this user, if one was opened."""
        with self._lock:
            return next((c for c in self.channels.values() if c.is_im and user_id in c.members), None)

    def calls_to(self, method: str) -> list[Call]:
        """The recorded calls of one method, oldest first."""
        with self._lock:
            return [call for call in self.calls if call.method == method]

    def clear_calls(self) -> None:
        """Forget the recorded calls (state and errors stay)."""
        with self._lock:
            self.calls.clear()

    def ephemerals(self, user: str | None = None, channel: str | None = None) -> list[dict[str, Any]]:
        """Ephemeral messages (``chat.postEphemeral`` and ephemeral response_url posts), oldest first.

        Each is a dict with ``text``, ``blocks``, ``user``, ``channel``, ``source`` and ``replace_original``.
        """
        with self._lock:
            return [
                copy.deepcopy(e)
                for e in self._ephemerals
                if (user is None or e["user"] == user) and (channel is None or e["channel"] == channel)
            ]

    def published_home(self, user_id: str) -> dict[str, Any] | None:
        """The Home tab view last published for this user, or None."""
        with self._lock:
            home = self._homes.get(user_id)
            return copy.deepcopy(home) if home else None

    def trigger_id(self, issued_ago: float = 0.0, user_id: str | None = None) -> str:
        """Mint a trigger id, valid for one ``views.open``/``views.push`` within 3 s of minting.

        ``issued_ago`` back-dates it, e.g. ``trigger_id(issued_ago=5)`` is already expired;
        ``user_id`` (who clicked or typed) is recorded with the views it opens.
        """
        trigger = f"{int(time.time() * 1000)}.{self._random.randrange(10**9, 10**10)}.{secrets.token_hex(16)}"
        with self._lock:
            self._triggers[trigger] = time.monotonic() - issued_ago
            self._trigger_users[trigger] = user_id
        return trigger

    def response_url(self, channel_id: str | None = None, user_id: str | None = None,
                     message_ts: str | None = None) -> str:
        """Mint a response_url bound to where the interaction happened (channel, user, source message)."""
        token = secrets.token_urlsafe(18)
        with self._lock:
            self._response_urls[token] = _ResponseUrl(channel_id, user_id, message_ts)
        return f"{self.base_url}/response/{token}"

    def wait_for(self, predicate: Callable[[SlackEmulator], T], timeout: float = 5.0,
                 interval: float = 0.02) -> T:
        """Poll until ``predicate(emu)`` is truthy and return its value; AssertionError on timeout.

        The app does its slow work after the ack, on another thread, so tests wait for its effects.
        A LookupError, StopIteration or AttributeError from the predicate counts as "not yet". The
        predicate runs holding the emulator's lock: it should read state, not call the Web API.
        """
        deadline = time.monotonic() + timeout
        last_exception: Exception | None = None
        while True:
            with self._lock:
                try:
                    result = predicate(self)
                    if result:
                        return result
                except (LookupError, StopIteration, AttributeError) as exc:
                    last_exception = exc
            if time.monotonic() >= deadline:
                raise AssertionError(self._timeout_report(predicate, timeout, last_exception))
            time.sleep(interval)

    # ---- fault injection -------------------------------------------------------------------

    def fail(self, method: str, error: str = "name_taken", times: int = 1) -> None:
        """The next ``times`` calls of ``method`` answer ``{"ok": false, "error": error}``."""
        self._add_fault(method, _Fault("fail", times, error=error))

    def rate_limit(self, method: str, times: int = 1, retry_after: int = 1) -> None:
        """The next ``times`` calls of ``method`` answer HTTP 429 ``ratelimited`` with ``Retry-After``."""
        self._add_fault(method, _Fault("rate_limit", times, retry_after=retry_after))

    def server_error(self, method: str, times: int = 1, status: int = 500) -> None:
        """The next ``times`` calls of ``method`` answer with this HTTP 5xx status."""
        self._add_fault(method, _Fault("server_error", times, status=status))

    def drop_connection(self, method: str, times: int = 1) -> None:
        """The next ``times`` calls of ``method`` have their connection closed without a response."""
        self._add_fault(method, _Fault("drop_connection", times))

    def clear_faults(self) -> None:
        """Drop every queued fault of every method: Slack is healthy again (calls and state stay)."""
        with self._lock:
            self._faults.clear()

    def _add_fault(self, method: str, fault: _Fault) -> None:
        if fault.remaining < 1:
            raise ValueError("times must be at least 1")
        with self._lock:
            self._faults.setdefault(method, []).append(fault)

    def _take_fault(self, method: str) -> _Fault | None:
        queue = self._faults.get(method)
        if not queue:
            return None
        fault = queue[0]
        fault.remaining -= 1
        if fault.remaining == 0:
            queue.pop(0)
        return fault

    @staticmethod
    def _fault_reply(fault: _Fault) -> _Reply | None:
        if fault.kind == "drop_connection":
            return None
        if fault.kind == "rate_limit":
            return _json_reply({"ok": False, "error": "ratelimited"}, status=429,
                               headers=(("Retry-After", str(fault.retry_after)),))
        if fault.kind == "server_error":
            error = "service_unavailable" if fault.status == 503 else "internal_error"
            return _json_reply({"ok": False, "error": error}, status=fault.status)
        return _json_reply({"ok": False, "error": fault.error})

    # ---- routing ---------------------------------------------------------------------------

    def _route(self, verb: str, raw_path: str, headers: Message, body: bytes) -> _Reply | None:
        url = urlsplit(raw_path)
        path = url.path
        if path.startswith("/api/"):
            return self._serve_api(path[len("/api/"):], url.query, headers, body)
        if verb == "POST" and path.startswith("/response/"):
            return self._serve_response_url(path[len("/response/"):], body)
        if verb == "POST" and path.startswith("/upload/v1/"):
            return self._serve_upload(path[len("/upload/v1/"):], body)
        if verb == "GET" and path.startswith("/files-pri/"):
            return self._serve_file_download(path, headers)
        return _text_reply("not_found", 404)

    def _serve_api(self, method: str, query: str, headers: Message, body: bytes) -> _Reply | None:
        try:
            args = _parse_args(headers.get("Content-Type", ""), body, query)
            parse_error = None
        except _ApiError as exc:
            args, parse_error = {}, exc
        token = args.pop("token", None)
        authorization = headers.get("Authorization", "")
        if authorization.startswith("Bearer "):
            token = authorization[len("Bearer "):].strip()
        with self._lock:
            self.calls.append(Call(method, args, time.time()))
            fault = self._take_fault(method)
        if fault is not None:
            return self._fault_reply(fault)
        try:
            if parse_error is not None:
                raise parse_error
            if not token:
                raise _ApiError("not_authed")
            if not str(token).startswith("xoxb-"):
                raise _ApiError("invalid_auth")
            handler = self._methods.get(method)
            if handler is None:
                self._record_error(method, "unknown_method", "the emulator does not implement this method")
                raise _ApiError("unknown_method", status=404, req_method=method)
            with self._lock:
                payload = handler(args)
        except _ApiError as exc:
            return _json_reply({"ok": False, "error": exc.error, **exc.extra}, status=exc.status)
        except Exception as exc:  # a gap in the emulator must fail the test, not hang it
            log.exception("slack emulator failed on %s", method)
            self._record_error(method, "internal_error", repr(exc))
            return _json_reply({"ok": False, "error": "internal_error"})
        return _json_reply({"ok": True, **payload})

    def _record_error(self, method: str, error: str, detail: str = "") -> None:
        with self._lock:
            self.errors.append(f"{method}: {error}" + (f": {detail}" if detail else ""))

    def _reject_payload(self, method: str, error: str, problems: list[str], **extra: Any) -> _ApiError:
        """Record a payload Slack would refuse, and build Slack's answer to it."""
        for problem in problems or [""]:
            self._record_error(method, error, problem)
        if problems:
            extra.setdefault("response_metadata", {"messages": [f"[ERROR] {p}" for p in problems]})
        return _ApiError(error, **extra)

    # ---- ids, objects ----------------------------------------------------------------------

    def _new_id(self, prefix: str) -> str:
        taken = {*self.channels, *self.views, *self._pending_uploads, *(f["id"] for f in self.files)}
        while True:
            candidate = prefix + "0" + "".join(self._random.choice(_ID_ALPHABET) for _ in range(8))
            if candidate not in taken:
                return candidate

    def _next_ts(self) -> str:
        """A message ts: seconds.microseconds, strictly increasing."""
        self._last_ts_us = max(time.time_ns() // 1000, self._last_ts_us + 1)
        return f"{self._last_ts_us // 1_000_000}.{self._last_ts_us % 1_000_000:06d}"

    def _channel_json(self, channel: Channel) -> dict[str, Any]:
        if channel.is_im:
            other = next((m for m in channel.members if m != self.bot_user_id), self.bot_user_id)
            return {"id": channel.id, "created": channel.created, "is_im": True, "is_org_shared": False,
                    "user": other, "is_user_deleted": False, "priority": 0}

        def about(value: str) -> dict[str, Any]:
            return {"value": value, "creator": self.bot_user_id if value else "",
                    "last_set": channel.created if value else 0}

        return {
            "id": channel.id,
            "name": channel.name,
            "is_channel": not channel.is_mpim,
            "is_group": False,
            "is_im": False,
            "is_mpim": channel.is_mpim,
            "is_private": channel.is_private,
            "created": channel.created,
            "is_archived": channel.is_archived,
            "is_general": False,
            "unlinked": 0,
            "name_normalized": channel.name,
            "is_shared": False,
            "is_ext_shared": False,
            "is_org_shared": False,
            "pending_shared": [],
            "is_pending_ext_shared": False,
            "is_member": self.bot_user_id in channel.members,
            "creator": channel.creator,
            "topic": about(channel.topic),
            "purpose": about(channel.purpose),
            "previous_names": [],
            "num_members": len(channel.members),
            "context_team_id": self.team_id,
        }

    @staticmethod
    def _message_json(message: dict[str, Any]) -> dict[str, Any]:
        return copy.deepcopy({key: value for key, value in message.items() if key != "edits"})

    def _bot_message(self, channel: Channel, text: str, blocks: list[Any] | None,
                     thread_ts: str | None = None, **extra: Any) -> dict[str, Any]:
        message: dict[str, Any] = {
            "type": "message",
            "ts": self._next_ts(),
            "user": self.bot_user_id,
            "bot_id": self.bot_id,
            "app_id": self.app_id,
            "team": self.team_id,
            "text": text,
            "bot_profile": {"id": self.bot_id, "app_id": self.app_id, "name": self.bot_name,
                            "team_id": self.team_id, "deleted": False},
        }
        if blocks:
            message["blocks"] = copy.deepcopy(blocks)
        if thread_ts:
            message["thread_ts"] = thread_ts
            parent = channel.message(thread_ts)
            if parent is not None:
                parent["thread_ts"] = thread_ts
                parent["reply_count"] = parent.get("reply_count", 0) + 1
                parent["latest_reply"] = message["ts"]
        message.update(extra)
        message["edits"] = []
        channel.messages.append(message)
        return message

    # ---- argument helpers ------------------------------------------------------------------

    def _channel(self, channel_id: Any, *, readable: bool = True) -> Channel:
        """The channel by id (or ``#name``); private ones the bot is not in look missing, as in Slack."""
        if not channel_id:
            raise _ApiError("channel_not_found")
        channel = self.channels.get(str(channel_id)) or self.channel_by_name(str(channel_id))
        if channel is None:
            raise _ApiError("channel_not_found")
        if readable and (channel.is_private or channel.is_im) and self.bot_user_id not in channel.members:
            raise _ApiError("channel_not_found")
        return channel

    def _member_channel(self, channel_id: Any) -> Channel:
        channel = self._channel(channel_id)
        if self.bot_user_id not in channel.members:
            raise _ApiError("not_in_channel")
        return channel

    def _message(self, channel: Channel, ts: Any) -> dict[str, Any]:
        message = channel.message(str(ts)) if ts else None
        if message is None:
            raise _ApiError("message_not_found")
        return message

    def _open_im(self, user_id: str) -> Channel:
        channel = self.dm_channel(user_id)
        if channel is None:
            channel = Channel(id=self._new_id("D"), name="", is_im=True,
                              members={self.bot_user_id, user_id}, creator=self.bot_user_id)
            self.channels[channel.id] = channel
        return channel

    def _posting_channel(self, target: Any) -> Channel:
        """Where chat.postMessage goes: a channel id or name, or a user id (their DM)."""
        target = str(target or "")
        if target in self.users and target not in self.channels:
            return self._open_im(target)
        channel = self._member_channel(target)
        if channel.is_archived:
            raise _ApiError("is_archived")
        return channel

    def _check_message_payload(self, method: str, args: dict[str, Any]) -> None:
        """no_text / msg_too_long / invalid_blocks, as Slack answers them, recorded in ``errors``."""
        text, blocks = args.get("text"), args.get("blocks")
        if not text and not blocks and not args.get("attachments"):
            raise self._reject_payload(method, "no_text", [])
        if text is not None and len(str(text)) > MESSAGE_TEXT_MAX_CHARS:
            too_long = f"text is {len(str(text))} characters, over {MESSAGE_TEXT_MAX_CHARS}"
            raise self._reject_payload(method, "msg_too_long", [too_long])
        if isinstance(blocks, str) and blocks.strip():
            raise self._reject_payload(method, "invalid_blocks_format", ["blocks is not a JSON array"])
        if blocks:
            problems = find_block_kit_problems(blocks)
            if problems:
                raise self._reject_payload(method, "invalid_blocks", problems, errors=problems)

    def _page(self, items: list[T], args: dict[str, Any], default_limit: int = DEFAULT_PAGE_SIZE
              ) -> tuple[list[T], dict[str, Any]]:
        """Cursor pagination as Slack does it: ``limit`` + ``cursor`` in, ``next_cursor`` out."""
        try:
            limit = int(args.get("limit") or default_limit)
        except (TypeError, ValueError) as exc:
            raise _ApiError("invalid_limit") from exc
        limit = len(items) if limit <= 0 else min(limit, MAX_PAGE_SIZE)
        offset = 0
        if args.get("cursor"):
            try:
                offset = int(base64.b64decode(str(args["cursor"])).decode().removeprefix("offset:"))
            except ValueError as exc:
                raise _ApiError("invalid_cursor") from exc
        page = items[offset: offset + limit]
        following = offset + limit
        next_cursor = ""
        if following < len(items):
            next_cursor = base64.b64encode(f"offset:{following}".encode()).decode()
        return page, {"next_cursor": next_cursor}

    @staticmethod
    def _channel_name_error(name: str) -> str | None:
        if not name:
            return "invalid_name_required"
        if len(name) > CHANNEL_NAME_MAX_CHARS:
            return "invalid_name_maxlength"
        if not _CHANNEL_NAME.match(name):
            return "invalid_name_specials"
        if not name.strip("-_"):
            return "invalid_name_punctuation"
        return None

    # ---- auth, team ------------------------------------------------------------------------

    def _auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"url": f"https://{self.team_domain}.slack.com/", "team": self.team_name,
                "user": self.bot_name, "team_id": self.team_id, "user_id": self.bot_user_id,
                "bot_id": self.bot_id, "is_enterprise_install": False}

    def _team_info(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"team": {"id": self.team_id, "name": self.team_name, "domain": self.team_domain,
                         "email_domain": "", "icon": {}}}

    # ---- chat ------------------------------------------------------------------------------

    def _chat_post_message(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._posting_channel(args.get("channel"))
        self._check_message_payload("chat.postMessage", args)
        extra = {key: args[key] for key in ("attachments", "metadata") if args.get(key)}
        message = self._bot_message(channel, str(args.get("text") or ""), args.get("blocks") or None,
                                    str(args["thread_ts"]) if args.get("thread_ts") else None, **extra)
        return {"channel": channel.id, "ts": message["ts"], "message": self._message_json(message)}

    def _chat_post_ephemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._member_channel(args.get("channel"))
        user = str(args.get("user") or "")
        if user not in self.users:
            raise _ApiError("user_not_found")
        if user not in channel.members:
            raise _ApiError("user_not_in_channel")
        self._check_message_payload("chat.postEphemeral", args)
        ts = self._next_ts()
        self._ephemerals.append({"text": str(args.get("text") or ""), "blocks": args.get("blocks") or None,
                                 "user": user, "channel": channel.id, "ts": ts,
                                 "thread_ts": args.get("thread_ts"), "source": "chat.postEphemeral",
                                 "replace_original": False})
        return {"message_ts": ts}

    def _chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args.get("channel"))
        message = self._message(channel, args.get("ts"))
        if message.get("user") != self.bot_user_id:
            raise _ApiError("cant_update_message")
        self._check_message_payload("chat.update", args)
        # Leaving text or blocks out keeps them; an empty blocks list clears them.
        self._edit_message(message, text=str(args["text"] or "") if "text" in args else None,
                           blocks=args.get("blocks") if "blocks" in args else None)
        return {"channel": channel.id, "ts": message["ts"], "text": message["text"],
                "message": self._message_json(message)}

    def _chat_delete(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args.get("channel"))
        message = self._message(channel, args.get("ts"))
        if message.get("user") != self.bot_user_id:
            raise _ApiError("cant_delete_message")
        self._delete_message(channel, message)
        return {"channel": channel.id, "ts": message["ts"]}

    def _edit_message(self, message: dict[str, Any], *, text: str | None, blocks: list[Any] | None) -> None:
        """Change a message in place and keep the new version in its ``edits``."""
        if text is not None:
            message["text"] = text
        if blocks is not None:
            if blocks:
                message["blocks"] = copy.deepcopy(blocks)
            else:
                message.pop("blocks", None)
        edit_ts = self._next_ts()
        message["edited"] = {"user": self.bot_user_id, "ts": edit_ts}
        message["edits"].append({"ts": edit_ts, "at": time.time(), "text": message["text"],
                                 "blocks": copy.deepcopy(message.get("blocks"))})

    @staticmethod
    def _delete_message(channel: Channel, message: dict[str, Any]) -> None:
        channel.messages.remove(message)
        channel.deleted.append(message)
        if message["ts"] in channel.pins:
            channel.pins.remove(message["ts"])

    def _chat_get_permalink(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args.get("channel"))
        message = self._message(channel, args.get("message_ts"))
        link = f"https://{self.team_domain}.slack.com/archives/{channel.id}/p{message['ts'].replace('.', '')}"
        if message.get("thread_ts") and message["thread_ts"] != message["ts"]:
            link += f"?thread_ts={message['thread_ts']}&cid={channel.id}"
        return {"channel": channel.id, "permalink": link}

    # ---- conversations ---------------------------------------------------------------------

    def _conversations_create(self, args: dict[str, Any]) -> dict[str, Any]:
        name = str(args.get("name") or "")
        error = self._channel_name_error(name)
        if error:
            raise _ApiError(error)
        if self.channel_by_name(name) is not None:
            raise _ApiError("name_taken")
        channel = Channel(id=self._new_id("C"), name=name, is_private=_flag(args.get("is_private")),
                          members={self.bot_user_id}, creator=self.bot_user_id)
        self.channels[channel.id] = channel
        return {"channel": self._channel_json(channel)}

    def _conversations_invite(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._member_channel(args.get("channel"))
        if channel.is_im:
            raise _ApiError("method_not_supported_for_channel_type")
        if channel.is_archived:
            raise _ApiError("is_archived")
        users = list(dict.fromkeys(_id_list(args.get("users"))))
        if not users:
            raise _ApiError("no_user")
        if len(users) > INVITE_MAX_USERS:
            raise _ApiError("too_many_users")
        failures: list[dict[str, Any]] = []
        for user in users:
            if user == self.bot_user_id:
                failures.append({"user": user, "ok": False, "error": "cant_invite_self"})
            elif user not in self.users:
                failures.append({"user": user, "ok": False, "error": "user_not_found"})
        if failures and not _flag(args.get("force")):
            raise _ApiError(failures[0]["error"], errors=failures)
        failed = {f["user"] for f in failures}
        to_add = [u for u in users if u not in failed and u not in channel.members]
        if not to_add and not failures:
            raise _ApiError("already_in_channel",
                            errors=[{"user": u, "ok": False, "error": "already_in_channel"} for u in users])
        channel.members.update(to_add)
        answer: dict[str, Any] = {"channel": self._channel_json(channel)}
        if failures:
            answer["errors"] = failures
        return answer

    def _conversations_join(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args.get("channel"), readable=False)
        if channel.is_private or channel.is_im:
            raise _ApiError("method_not_supported_for_channel_type")
        if channel.is_archived:
            raise _ApiError("is_archived")
        channel.members.add(self.bot_user_id)
        return {"channel": self._channel_json(channel)}

    def _conversations_open(self, args: dict[str, Any]) -> dict[str, Any]:
        if args.get("channel"):
            return {"channel": self._channel_json(self._channel(args["channel"]))}
        users = _id_list(args.get("users"))
        if not users:
            raise _ApiError("users_list_not_supplied")
        if len(users) > 8:
            raise _ApiError("too_many_users")
        for user in users:
            if user not in self.users:
                raise _ApiError("user_not_found")
        if len(users) == 1:
            return {"channel": self._channel_json(self._open_im(users[0]))}
        members = {self.bot_user_id, *users}
        channel = next((c for c in self.channels.values() if c.is_mpim and c.members == members), None)
        if channel is None:
            name = "mpdm-" + "--".join(sorted(self.users[u]["name"] for u in members)) + "-1"
            channel = Channel(id=self._new_id("C"), name=name, is_private=True, is_mpim=True,
                              members=members, creator=self.bot_user_id)
            self.channels[channel.id] = channel
        return {"channel": self._channel_json(channel)}

    def _conversations_archive(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._member_channel(args.get("channel"))
        if channel.is_im:
            raise _ApiError("method_not_supported_for_channel_type")
        if channel.is_archived:
            raise _ApiError("already_archived")
        channel.is_archived = True
        return {}

    def _set_channel_text(self, args: dict[str, Any], attribute: Literal["topic", "purpose"],
                          limit: int) -> dict[str, Any]:
        channel = self._member_channel(args.get("channel"))
        if channel.is_archived:
            raise _ApiError("is_archived")
        value = str(args.get(attribute) or "")
        if len(value) > limit:
            raise _ApiError("too_long")
        setattr(channel, attribute, value)
        return {"channel": self._channel_json(channel)}

    def _conversations_info(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"channel": self._channel_json(self._channel(args.get("channel")))}

    def _conversations_members(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args.get("channel"))
        members, metadata = self._page(sorted(channel.members), args)
        return {"members": members, "response_metadata": metadata}

    def _conversations_history(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args.get("channel"))
        inclusive = _flag(args.get("inclusive"))
        oldest = float(args["oldest"]) if args.get("oldest") else float("-inf")
        latest = float(args["latest"]) if args.get("latest") else float("inf")

        def in_window(ts: float) -> bool:
            return oldest <= ts <= latest if inclusive else oldest < ts < latest

        top_level = [m for m in channel.messages if m.get("thread_ts") in (None, m["ts"])]
        chosen = [self._message_json(m) for m in reversed(top_level) if in_window(float(m["ts"]))]
        page, metadata = self._page(chosen, args)
        return {"messages": page, "has_more": bool(metadata["next_cursor"]), "pin_count": len(channel.pins),
                "response_metadata": metadata}

    def _conversations_replies(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args.get("channel"))
        ts = str(args.get("ts") or "")
        if channel.message(ts) is None:
            raise _ApiError("thread_not_found")
        thread = [self._message_json(m) for m in channel.messages if ts in (m["ts"], m.get("thread_ts"))]
        page, metadata = self._page(thread, args)
        return {"messages": page, "has_more": bool(metadata["next_cursor"]), "response_metadata": metadata}

    def _conversations_list(self, args: dict[str, Any]) -> dict[str, Any]:
        types = set(_id_list(args.get("types")) or ["public_channel"])
        exclude_archived = _flag(args.get("exclude_archived"))

        def listed(channel: Channel) -> bool:
            if exclude_archived and channel.is_archived:
                return False
            if channel.is_im:
                return "im" in types
            if channel.is_mpim:
                return "mpim" in types and self.bot_user_id in channel.members
            if channel.is_private:
                return "private_channel" in types and self.bot_user_id in channel.members
            return "public_channel" in types

        chosen = [self._channel_json(c) for c in self.channels.values() if listed(c)]
        page, metadata = self._page(chosen, args)
        return {"channels": page, "response_metadata": metadata}

    # ---- pins, reactions -------------------------------------------------------------------

    def _pins_add(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._member_channel(args.get("channel"))
        if not args.get("timestamp"):
            raise _ApiError("no_item_specified")
        message = self._message(channel, args.get("timestamp"))
        if message["ts"] in channel.pins:
            raise _ApiError("already_pinned")
        channel.pins.append(message["ts"])
        message.setdefault("pinned_to", []).append(channel.id)
        return {}

    def _pins_list(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args.get("channel"))
        items = []
        for ts in channel.pins:
            message = channel.message(ts)
            if message is not None:
                items.append({"type": "message", "channel": channel.id, "created_by": self.bot_user_id,
                              "message": self._message_json(message)})
        return {"items": items}

    def _reactions_add(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args.get("channel"))
        if not args.get("timestamp"):
            raise _ApiError("no_item_specified")
        message = self._message(channel, args.get("timestamp"))
        name = str(args.get("name") or "").strip(":")
        if not name or not _EMOJI_NAME.match(name):
            raise _ApiError("invalid_name")
        reactions = message.setdefault("reactions", [])
        reaction = next((r for r in reactions if r["name"] == name), None)
        if reaction is None:
            reaction = {"name": name, "users": [], "count": 0}
            reactions.append(reaction)
        if self.bot_user_id in reaction["users"]:
            raise _ApiError("already_reacted")
        reaction["users"].append(self.bot_user_id)
        reaction["count"] += 1
        return {}

    # ---- users, user groups ----------------------------------------------------------------

    def _users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user = self.users.get(str(args.get("user") or ""))
        if user is None:
            raise _ApiError("user_not_found")
        return {"user": copy.deepcopy(user)}

    def _users_list(self, args: dict[str, Any]) -> dict[str, Any]:
        members, metadata = self._page([copy.deepcopy(u) for u in self.users.values()], args, default_limit=0)
        return {"members": members, "cache_ts": int(time.time()), "response_metadata": metadata}

    def _users_lookup_by_email(self, args: dict[str, Any]) -> dict[str, Any]:
        email = str(args.get("email") or "").lower()
        user = next((u for u in self.users.values() if u["profile"].get("email", "").lower() == email), None)
        if user is None:
            raise _ApiError("users_not_found")
        return {"user": copy.deepcopy(user)}

    def _usergroups_list(self, args: dict[str, Any]) -> dict[str, Any]:
        groups = copy.deepcopy(list(self.usergroups.values()))
        if not _flag(args.get("include_users")):
            for group in groups:
                group.pop("users", None)
        return {"usergroups": groups}

    def _usergroups_users_list(self, args: dict[str, Any]) -> dict[str, Any]:
        group = self.usergroups.get(str(args.get("usergroup") or ""))
        if group is None:
            raise _ApiError("no_such_subteam")
        return {"users": list(group["users"])}

    # ---- views -----------------------------------------------------------------------------

    def _checked_view(self, method: str, args: dict[str, Any], expected_type: str) -> dict[str, Any]:
        view = args.get("view")
        if not isinstance(view, dict):
            raise self._reject_payload(method, "invalid_arguments",
                                       [_problem("must be a view object", "/view")])
        if len(json.dumps(view).encode()) > VIEW_MAX_BYTES:
            raise self._reject_payload(method, "view_too_large", [f"view is over {VIEW_MAX_BYTES} bytes"])
        problems = find_view_problems(view, expected_type=expected_type)
        if problems:
            raise self._reject_payload(method, "invalid_arguments", problems)
        return view

    def _exchange_trigger(self, trigger_id: Any) -> str:
        if not trigger_id:
            raise _invalid_arguments("missing required field: trigger_id")
        trigger = str(trigger_id)
        if trigger in self._used_triggers:
            raise _ApiError("exchanged_trigger_id")
        minted_at = self._triggers.get(trigger)
        if minted_at is None and trigger.startswith("expired"):
            raise _ApiError("expired_trigger_id")
        if minted_at is not None and time.monotonic() - minted_at > TRIGGER_TTL_SECONDS:
            raise _ApiError("expired_trigger_id")
        self._used_triggers.add(trigger)
        return trigger

    def _stored_view(self, view: dict[str, Any], view_id: str, *, root_view_id: str | None = None,
                     previous_view_id: str | None = None) -> dict[str, Any]:
        stored = {
            "id": view_id, "team_id": self.team_id, "type": view["type"], "title": view.get("title"),
            "submit": view.get("submit"), "close": view.get("close"), "blocks": copy.deepcopy(view["blocks"]),
            "private_metadata": view.get("private_metadata", ""), "callback_id": view.get("callback_id", ""),
            "external_id": view.get("external_id", ""), "state": {"values": {}},
            "hash": f"{int(time.time())}.{secrets.token_hex(4)}",
            "clear_on_close": bool(view.get("clear_on_close", False)),
            "notify_on_close": bool(view.get("notify_on_close", False)),
            "root_view_id": root_view_id or view_id, "previous_view_id": previous_view_id,
            "app_id": self.app_id, "app_installed_team_id": self.team_id, "bot_id": self.bot_id,
        }
        self.views[view_id] = stored
        return copy.deepcopy(stored)

    def _check_external_id(self, view: dict[str, Any], own_id: str | None = None) -> None:
        external_id = view.get("external_id")
        if external_id and any(
            v["external_id"] == external_id and v["id"] != own_id for v in self.views.values()
        ):
            raise _ApiError("duplicate_external_id")

    def _views_open(self, args: dict[str, Any], method: str) -> dict[str, Any]:
        view = self._checked_view(method, args, "modal")
        self._check_external_id(view)
        trigger = self._exchange_trigger(args.get("trigger_id") or args.get("interactivity_pointer"))
        previous = self.opened_views[-1]["view_id"] if method == "views.push" and self.opened_views else None
        root = self.views[previous]["root_view_id"] if previous in self.views else None
        stored = self._stored_view(view, self._new_id("V"), root_view_id=root, previous_view_id=previous)
        self.opened_views.append({"method": method, "trigger_id": trigger, "view_id": stored["id"],
                                  "user": self._trigger_users.get(trigger), "view": copy.deepcopy(view)})
        return {"view": stored}

    def _views_update(self, args: dict[str, Any]) -> dict[str, Any]:
        view_id, external_id = args.get("view_id"), args.get("external_id")
        if not view_id and not external_id:
            raise _invalid_arguments("either view_id or external_id is required")
        current = self.views.get(str(view_id)) if view_id else next(
            (v for v in self.views.values() if v["external_id"] == external_id), None)
        if current is None:
            raise _ApiError("not_found")
        view = self._checked_view("views.update", args, current["type"])
        self._check_external_id(view, own_id=current["id"])
        if args.get("hash") and args["hash"] != current["hash"]:
            raise _ApiError("hash_conflict")
        return {"view": self._stored_view(view, current["id"], root_view_id=current["root_view_id"],
                                          previous_view_id=current["previous_view_id"])}

    def _views_publish(self, args: dict[str, Any]) -> dict[str, Any]:
        user_id = str(args.get("user_id") or "")
        if user_id not in self.users:
            raise _invalid_arguments("invalid `user_id`")
        view = self._checked_view("views.publish", args, "home")
        current = self._homes.get(user_id)
        if current is not None and args.get("hash") and args["hash"] != current["hash"]:
            raise _ApiError("hash_conflict")
        stored = self._stored_view(view, current["id"] if current else self._new_id("V"))
        self._homes[user_id] = stored
        return {"view": copy.deepcopy(stored)}

    # ---- files -----------------------------------------------------------------------------

    def _files_get_upload_url(self, args: dict[str, Any]) -> dict[str, Any]:
        filename = str(args.get("filename") or "")
        if not filename:
            raise _invalid_arguments("missing required field: filename")
        try:
            length = int(args.get("length"))  # type: ignore[arg-type]
        except (TypeError, ValueError) as exc:
            raise _invalid_arguments("missing required field: length") from exc
        file_id = self._new_id("F")
        upload_url = f"{self.base_url}/upload/v1/{file_id}"
        self._pending_uploads[file_id] = {"id": file_id, "name": filename, "length": length, "bytes": None,
                                          "alt_txt": args.get("alt_txt"),
                                          "snippet_type": args.get("snippet_type")}
        return {"upload_url": upload_url, "file_id": file_id}

    def _files_complete_upload(self, args: dict[str, Any]) -> dict[str, Any]:
        entries = args.get("files")
        if not isinstance(entries, list) or not entries:
            raise _invalid_arguments("invalid `files`")
        pending = []
        for entry in entries:
            upload = self._pending_uploads.get(str(entry.get("id") if isinstance(entry, dict) else ""))
            if upload is None or upload["bytes"] is None:
                raise _ApiError("file_not_found")
            pending.append((upload, entry))
        channel_ids = _id_list(args.get("channel_id")) or _id_list(args.get("channels"))
        channels = [self._posting_channel(c) for c in channel_ids]
        thread_ts = str(args["thread_ts"]) if args.get("thread_ts") else None
        comment = str(args.get("initial_comment") or "")
        files = []
        for upload, entry in pending:
            del self._pending_uploads[upload["id"]]
            record = {**upload, "title": entry.get("title") or upload["name"],
                      "channel": channels[0].id if channels else None, "channels": [c.id for c in channels],
                      "initial_comment": comment, "thread_ts": thread_ts, "user": self.bot_user_id,
                      "created": int(time.time())}
            self.files.append(record)
            files.append(record)
        for channel in channels:
            self._bot_message(channel, comment, None, thread_ts, upload=True,
                              files=[self._file_json(f) for f in files])
        return {"files": [self._file_json(f) for f in files]}

    def _file_json(self, record: dict[str, Any]) -> dict[str, Any]:
        mimetype = mimetypes.guess_type(record["name"])[0] or "application/octet-stream"
        private = f"{self.base_url}/files-pri/{self.team_id}-{record['id']}/{record['name']}"
        return {
            "id": record["id"], "created": record["created"], "timestamp": record["created"],
            "name": record["name"], "title": record["title"], "mimetype": mimetype,
            "filetype": record["name"].rsplit(".", 1)[-1] if "." in record["name"] else "binary",
            "user": record["user"], "user_team": self.team_id, "editable": False,
            "size": len(record["bytes"] or b""), "mode": "hosted", "is_external": False,
            "is_public": bool(record["channels"]), "url_private": private,
            "url_private_download": private + "?download=1",
            "permalink": f"https://{self.team_domain}.slack.com/files/{record['user']}/{record['id']}/"
                         f"{record['name']}",
            "channels": list(record["channels"]), "groups": [], "ims": [],
            "alt_txt": record.get("alt_txt"), "comments_count": 0,
        }

    def _files_info(self, args: dict[str, Any]) -> dict[str, Any]:
        record = next((f for f in self.files if f["id"] == args.get("file")), None)
        if record is None:
            raise _ApiError("file_not_found")
        return {"file": self._file_json(record), "comments": [], "response_metadata": {"next_cursor": ""}}

    def _files_upload_v1(self, args: dict[str, Any]) -> dict[str, Any]:
        self._record_error("files.upload", "method_deprecated", "use files_upload_v2")
        raise _ApiError("method_deprecated")

    def _serve_upload(self, file_id: str, body: bytes) -> _Reply | None:
        with self._lock:
            self.calls.append(Call("file_upload", {"file_id": file_id, "length": len(body)}, time.time()))
            fault = self._take_fault("file_upload")
            if fault is not None:
                return self._fault_reply(fault) if fault.kind != "fail" else _text_reply(fault.error, 500)
            upload = self._pending_uploads.get(file_id)
            if upload is None:
                return _text_reply("file_not_found", 404)
            upload["bytes"] = body
        return _text_reply(f"OK - {len(body)}")

    def _serve_file_download(self, path: str, headers: Message) -> _Reply:
        if not headers.get("Authorization", "").startswith("Bearer xoxb-"):
            return _text_reply("not_authed", 403)
        file_id = path.split("/")[2].split("-", 1)[-1]
        with self._lock:
            record = next((f for f in self.files if f["id"] == file_id), None)
        if record is None:
            return _text_reply("file_not_found", 404)
        mimetype = mimetypes.guess_type(record["name"])[0] or "application/octet-stream"
        return _Reply(200, record["bytes"] or b"", content_type=mimetype)

    # ---- response_url ----------------------------------------------------------------------

    def _serve_response_url(self, token: str, body: bytes) -> _Reply | None:
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
        with self._lock:
            self.calls.append(Call("response_url", payload if isinstance(payload, dict) else {"body": body},
                                   time.time()))
            fault = self._take_fault("response_url")
            if fault is not None:
                return self._fault_reply(fault) if fault.kind != "fail" else _text_reply(fault.error, 404)
            hook = self._response_urls.get(token)
            if hook is None:
                return _text_reply("no_service", 404)
            if hook.uses >= RESPONSE_URL_MAX_USES:
                return _text_reply("used_url", 404)
            if not isinstance(payload, dict):
                self._record_error("response_url", "invalid_payload", "body is not a JSON object")
                return _text_reply("invalid_payload", 400)
            hook.uses += 1
            self.responses.append((token, copy.deepcopy(payload)))
            try:
                self._apply_response(hook, payload)
            except _ApiError as exc:
                return _text_reply(exc.error, 400 if exc.error != "channel_not_found" else 404)
        return _text_reply("ok")

    def _apply_response(self, hook: _ResponseUrl, payload: dict[str, Any]) -> None:
        channel = self.channels.get(hook.channel_id or "")
        original = channel.message(hook.message_ts) if channel and hook.message_ts else None
        if _flag(payload.get("delete_original")):
            if channel is not None and original is not None:
                self._delete_message(channel, original)
            return
        self._check_message_payload("response_url", payload)
        text, blocks = str(payload.get("text") or ""), payload.get("blocks") or None
        replace = _flag(payload.get("replace_original"))
        if replace and original is not None:
            self._edit_message(original, text=text, blocks=blocks or [])
        elif payload.get("response_type") == "in_channel":
            if channel is None:
                raise _ApiError("channel_not_found")
            thread_ts = payload.get("thread_ts")
            self._bot_message(channel, text, blocks, str(thread_ts) if thread_ts else None)
        else:
            self._ephemerals.append({"text": text, "blocks": blocks, "user": hook.user_id,
                                     "channel": hook.channel_id, "ts": self._next_ts(),
                                     "thread_ts": payload.get("thread_ts"), "source": "response_url",
                                     "replace_original": replace})

    # ---- reporting -------------------------------------------------------------------------

    def _timeout_report(self, predicate: Callable[..., Any], timeout: float,
                        last_exception: Exception | None) -> str:
        try:
            source = inspect.getsource(predicate).strip()
        except (OSError, TypeError):
            source = repr(predicate)
        lines = [f"condition not met within {timeout:g}s: {source}"]
        if last_exception is not None:
            lines.append(f"last raised: {last_exception!r}")
        with self._lock:
            recent = self.calls[-20:]
            errors = list(self.errors)
        lines.append(f"recent Slack calls ({len(recent)} of {len(self.calls)}, oldest first):")
        for call in recent:
            args = ", ".join(f"{key}={_short(value, 60)}" for key, value in call.args.items())
            lines.append(f"  {call.method}({args})")
        if errors:
            lines.append("emulator errors:")
            lines.extend(f"  {error}" for error in errors)
        return "\n".join(lines)
