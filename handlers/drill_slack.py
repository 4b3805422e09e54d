"""A drill's Slack side: its Slack client, its alert channel, and its report.

A drill's runtime talks to Slack through `DrillSlackClient`, the one gateway every message of the
drill goes through (listeners' work runs from the queue on the runtime's client). So every message
it posts or updates says DRILL, whichever feature posts it (digests, alerts, drafts, and what later
features add), and it writes only to the drill's own channels: those it created, its alert channel,
and people's DMs. A write anywhere else is refused before it leaves the process.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web import SlackResponse

from bot.infra.errors import CommandError
from bot.infra.mrkdwn import escape_mrkdwn
from handlers.render.common import section
from handlers.render.drill import DRILL, drill_blocks, drill_line

if TYPE_CHECKING:
    from bot.demo.scorecard import Scorecard
    from bot.infra.settings import Settings

log = logging.getLogger(__name__)

# Web API methods that write into a conversation, and the argument naming it.
WRITES = {
    "chat.postMessage": "channel", "chat.postEphemeral": "channel", "chat.update": "channel",
    "chat.delete": "channel", "chat.scheduleMessage": "channel", "chat.meMessage": "channel",
    "conversations.setTopic": "channel", "conversations.setPurpose": "channel",
    "conversations.invite": "channel", "conversations.kick": "channel", "conversations.rename": "channel",
    "conversations.archive": "channel", "conversations.join": "channel", "pins.add": "channel",
    "pins.remove": "channel", "reactions.add": "channel", "files.completeUploadExternal": "channel_id",
    "files.upload": "channels",
}
MESSAGES = ("chat.postMessage", "chat.postEphemeral", "chat.update", "chat.scheduleMessage")
CHANNEL_TEXTS = {"conversations.setTopic": ("topic", 250), "conversations.setPurpose": ("purpose", 250)}
MESSAGE_TEXT_LIMIT = 40_000
COMMENT_LIMIT = 3_000


class DrillBoundaryError(SlackClientError):
    """A drill tried to write outside its own channels; nothing was sent."""


class DrillSlackClient(WebClient):
    """A WebClient for a drill: DRILL on every message, writes only to the drill's own conversations."""

    def __init__(self, *args: Any, allowed: Iterable[str] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._allowed = set(allowed)
        self._lock = threading.Lock()

    @classmethod
    def like(cls, client: WebClient, allowed: Iterable[str] = ()) -> DrillSlackClient:
        """A drill client with the same token, API URL, timeout and retries as `client`."""
        return cls(token=client.token, base_url=client.base_url, timeout=client.timeout,
                   retry_handlers=client.retry_handlers, allowed=allowed)

    def allow(self, conversation: str) -> None:
        """Let the drill write into `conversation` too (its alert channel)."""
        with self._lock:
            self._allowed.add(conversation)

    def allowed(self, conversation: str) -> bool:
        with self._lock:
            known = conversation in self._allowed
        # People's DMs: a user id (chat.postMessage opens the DM) or a DM channel.
        return known or conversation[:1] in ("U", "W", "D")

    def api_call(self, api_method: str, **kwargs: Any) -> SlackResponse:  # type: ignore[override]
        # The method's arguments travel as a JSON body, URL parameters or a form, by method.
        where = next((key for key in ("json", "params", "data") if isinstance(kwargs.get(key), dict)), None)
        if where is not None:
            kwargs[where] = self._checked_and_marked(api_method, dict(kwargs[where]))
        elif api_method in WRITES:
            raise DrillBoundaryError(f"a drill cannot tell where {api_method} writes; it was refused")
        response = super().api_call(api_method, **kwargs)
        if api_method == "conversations.create" and response.get("ok"):
            self.allow(str(response["channel"]["id"]))  # type: ignore[index]
        return response  # type: ignore[return-value]

    def _checked_and_marked(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        if method in WRITES:
            targets = [t for t in str(args.get(WRITES[method]) or "").split(",") if t]
            refused = [target for target in targets if not self.allowed(target)]
            if refused:
                raise DrillBoundaryError(f"a drill writes only to its own channels; {method} to "
                                         f"{', '.join(refused)} was refused")
        if method in MESSAGES:
            if args.get("text"):
                args["text"] = drill_line(str(args["text"]), MESSAGE_TEXT_LIMIT)
            if args.get("blocks"):
                args["blocks"] = drill_blocks(args["blocks"])
            elif not args.get("text"):
                args["text"] = DRILL
        elif method in CHANNEL_TEXTS:
            key, limit = CHANNEL_TEXTS[method]
            args[key] = drill_line(str(args.get(key) or ""), limit)
        elif method == "files.completeUploadExternal":  # the file's message: its comment says DRILL
            comment = str(args.get("initial_comment") or "")
            args["initial_comment"] = drill_line(comment, COMMENT_LIMIT) if comment else DRILL
        return args


# ---- /crisis drill <name> ------------------------------------------------------------------------


# ---- a drill's channels and its report ---------------------------------------------------------------


def open_alert_channel(client: DrillSlackClient, reference: str | None, name: str, members: list[str]) -> str:
    """The drill's alert channel: the plan's drill `alert_channel`, else `name`, created (or found, from an
    earlier drill) and with the plan's people invited. Its id; the drill may write there."""
    from handlers.slack_gateway import find_channel

    if reference is not None:
        channel = find_channel(client, reference)
    else:
        try:
            channel = str(client.conversations_create(name=name)["channel"]["id"])
        except SlackApiError as exc:
            if exc.response.get("error") != "name_taken":
                raise
            channel = find_channel(client, f"#{name}")
    if channel.startswith("#"):
        raise CommandError(f"the drill's alert channel {channel} was not found (is the bot in it?)")
    client.allow(channel)
    if reference is None and members:
        try:
            client.conversations_invite(channel=channel, users=",".join(dict.fromkeys(members)))
        except SlackApiError as exc:  # already in, or an account Slack will not invite: they can join
            log.info("drill alert channel: invite answered %s", exc.response.get("error"))
    return channel


def _report_client(settings: Settings, channel: str) -> DrillSlackClient:
    from bot.background.runtime import make_slack_client

    return DrillSlackClient.like(make_slack_client(settings), allowed=[channel])


def post_drill_report(settings: Settings, channel: str, scorecard: Scorecard, exports: list[Path]) -> None:
    """The scorecard in `channel` (where `/crisis drill` was typed), the Markdown export in its thread."""
    from handlers.render.drill import drill_report_blocks

    client = _report_client(settings, channel)
    title = scorecard.setup.incident_title
    posted = client.chat_postMessage(channel=channel, text=f"Drill finished: {escape_mrkdwn(title)}",
                                     blocks=drill_report_blocks(title, scorecard.text()))
    markdown = next((path for path in exports if path.suffix == ".md"), None)
    if markdown is not None:
        client.files_upload_v2(channel=channel, thread_ts=str(posted["ts"]), file=str(markdown),
                               filename=markdown.name, title=f"{title} — drill export",
                               initial_comment="The drill's timeline export (Markdown).")


def post_drill_failure(settings: Settings, channel: str, title: str, error: Exception) -> None:
    """Tell `channel` the drill it asked for stopped, and why."""
    reason = str(error).splitlines()[0] if str(error) else type(error).__name__
    text = f":warning: The drill *{escape_mrkdwn(title)}* stopped: {escape_mrkdwn(reason[:300])}"
    try:
        _report_client(settings, channel).chat_postMessage(channel=channel, text=text, blocks=[section(text)])
    except SlackClientError:
        log.exception("could not tell %s that its drill failed", channel)
