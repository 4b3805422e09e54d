"""Drills on the Slack side: the drill's Slack client, and `/crisis drill <name>`.

A drill's runtime talks to Slack through `DrillSlackClient`, the one gateway every message of the
drill goes through (listeners' work runs from the queue on the runtime's client). So every message
it posts or updates says DRILL, whichever feature posts it (digests, alerts, drafts, and what later
features add), and it writes only to the drill's own channels: those it created, its alert channel,
and people's DMs. A write anywhere else is refused before it leaves the process.

`/crisis drill <name>` runs the plan's drill in a child process (`warroom drill … --offline`): the
bot's clock is one per process, and a drill's simulated clock must never become the live bot's. The
child replays the stream against an offline copy of War Room with the scripted team, then posts its
scorecard and export in the channel the command came from.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web import SlackResponse

from bot.crisis.commands import form_of
from bot.crisis.plan import plan_path
from bot.infra.errors import CommandError
from bot.infra.mrkdwn import escape_mrkdwn
from handlers.commands import CommandRequest
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


def _drill_names(names: Iterable[str]) -> str:
    return ", ".join(f"`{name}`" for name in sorted(names))


def drill_command(request: CommandRequest) -> None:
    """`/crisis drill <name>`: validate the plan's drill, start it in a child process, say so here."""
    from bot.demo.drill import plan_drill

    runtime = request.runtime
    plan = runtime.plan
    name = request.args.strip().lower()
    if not plan.drills:
        request.reply("The plan defines no drills. Add one under `drills:` (its stream `file`, `speed` and "
                      "`playbook`), or run `warroom drill FILE` from the command line.", form=form_of("drill"))
        return
    if name not in plan.drills:
        given = f"`{escape_mrkdwn(name[:40])}` is not" if name else "Say which drill:"
        request.reply(f"{given} a drill in the plan: use one of {_drill_names(plan.drills)}.", form=form_of("drill"))
        return
    try:
        setup = plan_drill(plan, name, plan_path(runtime.settings.warroom_plan))
    except CommandError as exc:
        lines = str(exc).splitlines()
        shown = "\n".join(escape_mrkdwn(line) for line in lines[:6]) + ("\n…" if len(lines) > 6 else "")
        request.reply(f"Drill `{name}` cannot start; nothing was replayed:\n```{shown}```")
        return
    announcement = (f":test_tube: *{DRILL}* `{name}` started by <@{request.user_id}>: {setup.summary()}, against an "
                    "offline copy of War Room with a scripted team (no real incident, channel or account is "
                    "touched). Its scorecard and export will be posted here.")
    try:
        request.client.chat_postMessage(channel=request.channel_id, text=drill_line(f"Drill {name} started", 200),
                                        blocks=[section(announcement)])
    except SlackApiError as exc:
        request.reply(f"The drill was not started: Slack answered `{exc.response.get('error')}` when I tried to post "
                      "here (invite me to this channel, or run it from one I am in).")
        return
    start_drill_process(request, setup.command(report_to=request.channel_id))


def start_drill_process(request: CommandRequest, arguments: list[str]) -> None:
    """Run `warroom drill …` in a child process fed the plan in force on stdin; reap it when it ends."""
    runtime = request.runtime
    settings = runtime.settings
    env = dict(os.environ, SLACK_API_URL=settings.slack_api_url)
    if settings.slack_bot_token is not None:
        env["SLACK_BOT_TOKEN"] = settings.slack_bot_token.get_secret_value()
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "drill", *arguments, "--plan-from-stdin"],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env, start_new_session=True,
    )
    assert process.stdin is not None
    process.stdin.write(runtime.plan.model_dump_json().encode())
    process.stdin.close()
    threading.Thread(target=process.wait, name=f"drill-{process.pid}", daemon=True).start()
    log.info("drill started by %s in %s (process %d)", request.user_id, request.channel_id, process.pid)


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
