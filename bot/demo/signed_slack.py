"""Signed Slack requests to the running app over real HTTP, shaped the way Slack sends them.

``SlackClient`` plays Slack's side of ``POST /slack/events``: slash commands, button clicks, modal
submissions, message shortcuts and Events API callbacks, each signed with the app's signing secret.
Given the emulator, it behaves like the workspace the emulator holds: unknown users are added to it,
``response_url`` and ``trigger_id`` are minted by it (so ``respond()`` and ``views.open`` work),
and a button click finds the message and block that carry the button.
"""

from __future__ import annotations

import functools
import json
import random
import string
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import httpx
from slack_sdk.signature import SignatureVerifier

from bot.demo.slack_emulator import SlackEmulator

DEFAULT_USER_ID = "ULEAD01"
DEFAULT_CHANNEL_ID = "C0GENERAL1"
DEFAULT_CHANNEL_NAME = "general"
# The deprecated verification token Slack still sends in every payload.
VERIFICATION_TOKEN = "Jhj5dZrVaK7ZwHHjRyZWjbDl"  # noqa: S105 - a made-up value in Slack's shape
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
_ID_ALPHABET = string.ascii_uppercase + string.digits


@functools.cache
def _http_client() -> httpx.Client:
    """One connection pool for every SlackClient: building a client costs ~75 ms (its TLS context)."""
    return httpx.Client()


def _now_ts() -> str:
    return f"{time.time():.6f}"


def _random_id(prefix: str, length: int = 10) -> str:
    return prefix + "".join(random.choices(_ID_ALPHABET, k=length))


def _fake_trigger_id() -> str:
    return f"{int(time.time() * 1000)}.{random.randrange(10**9, 10**10)}.{random.getrandbits(128):032x}"


def _state_values(values: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """``{block_id: {action_id: "text"}}`` as plain-text inputs; dict values are passed as they are."""
    state: dict[str, dict[str, Any]] = {}
    for block_id, actions in values.items():
        state[block_id] = {
            action_id: value if isinstance(value, dict) else {"type": "plain_text_input", "value": value}
            for action_id, value in actions.items()
        }
    return state


def _find_element(blocks: list[dict[str, Any]], action_id: str, value: str | None
                  ) -> tuple[str | None, dict[str, Any] | None]:
    """The block_id and element carrying this action_id (and value, when given)."""
    for block in blocks:
        candidates = list(block.get("elements") or [])
        candidates += [block[key] for key in ("accessory", "element") if isinstance(block.get(key), dict)]
        for element in candidates:
            if not isinstance(element, dict) or element.get("action_id") != action_id:
                continue
            options = [option.get("value") for option in element.get("options") or [] if isinstance(option, dict)]
            if value is None or element.get("value") == value or value in options:  # a button, or a menu's option
                return block.get("block_id"), element
    return None, None


def find_button(
    messages: list[dict[str, Any]], action_id: str, value: str | None
) -> tuple[dict[str, Any], str, dict[str, Any]]:
    """The newest message carrying this button, its block id and the button; LookupError if none."""
    for message in reversed(messages):
        block_id, element = _find_element(message.get("blocks") or [], action_id, value)
        if element is not None:
            return message, block_id or "", element
    raise LookupError(f"no {action_id!r} button")


class SlackClient:
    """Sends correctly signed Slack payloads to ``{app_url}/slack/events``."""

    def __init__(self, app_url: str, signing_secret: str, emulator: SlackEmulator | None = None, *,
                 timeout: float = 10.0) -> None:
        self.app_url = app_url.rstrip("/")
        self.events_url = f"{self.app_url}/slack/events"
        self.emulator = emulator
        self.team_id = emulator.team_id if emulator else "T0001"
        self.team_domain = emulator.team_domain if emulator else "warroom-test"
        self.api_app_id = emulator.app_id if emulator else "A0001"
        self.bot_user_id = emulator.bot_user_id if emulator else "UBOT"
        self.timeout = timeout
        self._verifier = SignatureVerifier(signing_secret)

    # ---- signing and raw posting -----------------------------------------------------------

    def sign(self, body: bytes, timestamp: int | None = None) -> dict[str, str]:
        """The ``X-Slack-Request-Timestamp`` and ``X-Slack-Signature`` headers for this body."""
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        signature = self._verifier.generate_signature(timestamp=stamp, body=body)
        assert signature is not None
        return {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": signature}

    def post(self, body: bytes, headers: Mapping[str, str] | None = None, *,
             content_type: str = FORM) -> httpx.Response:
        """POST these exact bytes and headers (nothing signed for you; Content-Type added if missing)."""
        sent = dict(headers or {})
        if not any(name.lower() == "content-type" for name in sent):
            sent["Content-Type"] = content_type
        return _http_client().post(self.events_url, content=body, headers=sent, timeout=self.timeout)

    def _send(self, body: bytes, content_type: str) -> httpx.Response:
        return self.post(body, self.sign(body), content_type=content_type)

    def _send_payload(self, payload: dict[str, Any]) -> httpx.Response:
        """Interactivity: a form with one ``payload`` field holding the JSON."""
        return self._send(urlencode({"payload": json.dumps(payload)}).encode(), FORM)

    # ---- Slack's payloads ------------------------------------------------------------------

    def command(self, text: str, user_id: str = DEFAULT_USER_ID, channel_id: str | None = None,
                command: str = "/crisis", team_id: str | None = None,
                user_name: str | None = None) -> httpx.Response:
        """A slash command, form-encoded field for field as Slack sends it."""
        user_name = self._user(user_id, user_name)
        channel_id, channel_name = self._channel(channel_id, user_id)
        fields = [
            ("token", VERIFICATION_TOKEN),
            ("team_id", team_id or self.team_id),
            ("team_domain", self.team_domain),
            ("channel_id", channel_id),
            ("channel_name", channel_name),
            ("user_id", user_id),
            ("user_name", user_name),
            ("command", command),
            ("text", text),
            ("api_app_id", self.api_app_id),
            ("is_enterprise_install", "false"),
            ("response_url", self._response_url(channel_id, user_id, None)),
            ("trigger_id", self._trigger_id(user_id)),
        ]
        return self._send(urlencode(fields).encode(), FORM)

    def block_action(self, action_id: str, value: str | None = None, user_id: str = DEFAULT_USER_ID,
                     channel_id: str | None = None, message_ts: str | None = None,
                     block_id: str | None = None, message: dict[str, Any] | None = None,
                     view: dict[str, Any] | None = None, *, is_ephemeral: bool = False) -> httpx.Response:
        """A button click (``block_actions``) in a message, or in ``view`` (a modal or Home tab).

        With the emulator and no ``message``, the clicked message is the one at ``message_ts``, or else
        the newest message in the channel with a button of this ``action_id`` (and ``value``, if given).
        """
        user_name = self._user(user_id, None)
        payload: dict[str, Any] = {
            "type": "block_actions",
            "user": {"id": user_id, "username": user_name, "name": user_name, "team_id": self.team_id},
            "api_app_id": self.api_app_id,
            "token": VERIFICATION_TOKEN,
            "trigger_id": self._trigger_id(user_id),
            "team": {"id": self.team_id, "domain": self.team_domain},
            "enterprise": None,
            "is_enterprise_install": False,
            "state": {"values": {}},
        }
        if view is not None:
            blocks = view.get("blocks") or []
            view_id = view.get("id") or _random_id("V")
            payload["container"] = {"type": "view", "view_id": view_id}
            payload["view"] = {"id": view_id, "team_id": self.team_id, "state": {"values": {}},
                               "hash": f"{int(time.time())}.abc123", "app_id": self.api_app_id, **view}
        else:
            channel_id, channel_name = self._channel(channel_id, user_id)
            if message is None:
                message = self._clicked_message(channel_id, action_id, value, message_ts)
            message = {key: item for key, item in message.items() if key != "edits"}  # the emulator's own
            message_ts = str(message.get("ts") or message_ts or _now_ts())
            blocks = message.get("blocks") or []
            payload["container"] = {"type": "message", "message_ts": message_ts, "channel_id": channel_id,
                                    "is_ephemeral": is_ephemeral}
            payload["channel"] = {"id": channel_id, "name": channel_name}
            payload["message"] = message
            payload["response_url"] = self._response_url(channel_id, user_id, message_ts)
        found_block_id, element = _find_element(blocks, action_id, value)
        action: dict[str, Any] = {
            "action_id": action_id,
            "block_id": block_id or found_block_id or _random_id("", 5),
            "text": (element or {}).get("text") or {"type": "plain_text", "text": action_id, "emoji": True},
            "type": (element or {}).get("type", "button"),
            "action_ts": _now_ts(),
        }
        chosen_value = value if value is not None else (element or {}).get("value")
        if action["type"] == "overflow":
            # An overflow menu sends the chosen option, as Slack does, not a value.
            option = next(o for o in (element or {}).get("options", []) if o.get("value") == chosen_value)
            action["selected_option"] = option
        elif chosen_value is not None:
            action["value"] = chosen_value
        payload["actions"] = [action]
        return self._send_payload(payload)

    def view_submission(self, callback_id: str, state_values: Mapping[str, Mapping[str, Any]],
                        user_id: str = DEFAULT_USER_ID, private_metadata: str = "",
                        view: dict[str, Any] | None = None) -> httpx.Response:
        """A modal submitted with these input values.

        ``state_values`` is ``{block_id: {action_id: value}}``: a string becomes a plain-text input's
        value, a dict is sent as it is (e.g. ``{"type": "static_select", "selected_option": {...}}``).
        The submitted view is ``view``, else the last one the app opened with this callback_id.
        """
        user_name = self._user(user_id, None)
        base = view if view is not None else self._opened_view(callback_id) or {}
        view_id = base.get("id") or _random_id("V")
        submitted = {
            "id": view_id,
            "team_id": self.team_id,
            "type": "modal",
            "blocks": base.get("blocks") or [],
            "private_metadata": private_metadata or base.get("private_metadata") or "",
            "callback_id": callback_id,
            "state": {"values": _state_values(state_values)},
            "hash": base.get("hash") or f"{int(time.time())}.abc123",
            "title": base.get("title") or {"type": "plain_text", "text": "War Room", "emoji": True},
            "clear_on_close": False,
            "notify_on_close": False,
            "close": base.get("close"),
            "submit": base.get("submit"),
            "previous_view_id": base.get("previous_view_id"),
            "root_view_id": base.get("root_view_id") or view_id,
            "app_id": self.api_app_id,
            "external_id": base.get("external_id") or "",
            "app_installed_team_id": self.team_id,
            "bot_id": base.get("bot_id") or "B0001",
        }
        payload = {
            "type": "view_submission",
            "team": {"id": self.team_id, "domain": self.team_domain},
            "user": {"id": user_id, "username": user_name, "name": user_name, "team_id": self.team_id},
            "api_app_id": self.api_app_id,
            "token": VERIFICATION_TOKEN,
            "trigger_id": self._trigger_id(user_id),
            "view": submitted,
            "response_urls": [],
            "is_enterprise_install": False,
            "enterprise": None,
        }
        return self._send_payload(payload)

    def message_shortcut(self, callback_id: str, message: dict[str, Any], channel_id: str | None = None,
                         user_id: str = DEFAULT_USER_ID) -> httpx.Response:
        """A message shortcut (``message_action``) used on ``message``."""
        user_name = self._user(user_id, None)
        channel_id, channel_name = self._channel(channel_id, user_id)
        message = {key: value for key, value in message.items() if key != "edits"}
        message_ts = str(message.get("ts") or _now_ts())
        payload = {
            "type": "message_action",
            "token": VERIFICATION_TOKEN,
            "action_ts": _now_ts(),
            "team": {"id": self.team_id, "domain": self.team_domain},
            "user": {"id": user_id, "username": user_name, "name": user_name, "team_id": self.team_id},
            "channel": {"id": channel_id, "name": channel_name},
            "is_enterprise_install": False,
            "enterprise": None,
            "callback_id": callback_id,
            "trigger_id": self._trigger_id(user_id),
            "response_url": self._response_url(channel_id, user_id, message_ts),
            "message_ts": message_ts,
            "message": message,
        }
        return self._send_payload(payload)

    def event(self, event: dict[str, Any]) -> httpx.Response:
        """An Events API ``event_callback`` carrying ``event`` (a ``url_verification`` goes as it is)."""
        if event.get("type") == "url_verification":
            return self._send(json.dumps({"token": VERIFICATION_TOKEN, **event}).encode(), JSON)
        envelope = {
            "token": VERIFICATION_TOKEN,
            "team_id": self.team_id,
            "api_app_id": self.api_app_id,
            "event": {"event_ts": _now_ts(), **event},
            "type": "event_callback",
            "event_id": _random_id("Ev"),
            "event_time": int(time.time()),
            "authorizations": [{"enterprise_id": None, "team_id": self.team_id, "user_id": self.bot_user_id,
                                "is_bot": True, "is_enterprise_install": False}],
            "is_ext_shared_channel": False,
            "event_context": "4-" + _random_id("", 40),
        }
        return self._send(json.dumps(envelope).encode(), JSON)

    def url_verification(self, challenge: str = "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
                         ) -> httpx.Response:
        """The handshake Slack sends when the Request URL is saved."""
        return self.event({"type": "url_verification", "challenge": challenge})

    # ---- the workspace behind the requests -------------------------------------------------

    def _user(self, user_id: str, user_name: str | None) -> str:
        """The user's name; with the emulator, a user it does not know yet joins the workspace."""
        if self.emulator is None:
            return user_name or user_id.lower()
        known = self.emulator.users.get(user_id)
        if known is None:
            known = self.emulator.add_user(user_id, user_name or user_id.lower())
        return user_name or str(known["name"])

    def _channel(self, channel_id: str | None, user_id: str) -> tuple[str, str]:
        """The channel id and name; no id means #general (the bot is not in it, the user is)."""
        if self.emulator is None:
            return channel_id or DEFAULT_CHANNEL_ID, DEFAULT_CHANNEL_NAME
        if channel_id is None:
            general = self.emulator.channel_by_name(DEFAULT_CHANNEL_NAME)
            if general is None:
                self.emulator.add_channel(DEFAULT_CHANNEL_NAME, [user_id], bot_member=False,
                                          channel_id=DEFAULT_CHANNEL_ID)
                general = self.emulator.channels[DEFAULT_CHANNEL_ID]
            general.members.add(user_id)
            return general.id, general.name
        channel = self.emulator.channels.get(channel_id)
        return channel_id, channel.name if channel is not None and channel.name else "directmessage"

    def _clicked_message(self, channel_id: str, action_id: str, value: str | None,
                         message_ts: str | None) -> dict[str, Any]:
        if self.emulator is None or channel_id not in self.emulator.channels:
            return {"type": "message", "ts": message_ts or _now_ts(), "text": "", "user": self.bot_user_id}
        messages = self.emulator.messages(channel_id)
        if message_ts is not None:
            found = next((m for m in messages if m["ts"] == message_ts), None)
        else:
            try:
                found = find_button(messages, action_id, value)[0]
            except LookupError:
                found = None
        if found is None:
            raise LookupError(f"no message in {channel_id} with a {action_id!r} button"
                              + (f" at ts {message_ts}" if message_ts else ""))
        return found

    def _opened_view(self, callback_id: str) -> dict[str, Any] | None:
        if self.emulator is None:
            return None
        for opened in reversed(self.emulator.opened_views):
            stored = self.emulator.views.get(opened["view_id"])
            if stored is not None and stored.get("callback_id") == callback_id:
                return dict(stored)
        return None

    def _response_url(self, channel_id: str, user_id: str, message_ts: str | None) -> str:
        if self.emulator is None:
            return f"https://hooks.slack.com/actions/{self.team_id}/{random.randrange(10**12)}/{_random_id('')}"
        return self.emulator.response_url(channel_id, user_id, message_ts)

    def _trigger_id(self, user_id: str) -> str:
        return self.emulator.trigger_id(user_id=user_id) if self.emulator is not None else _fake_trigger_id()
