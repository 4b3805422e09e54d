"""The one gateway to Slack for flows: implements `bot.flows.port.SlackPort` with the Web API client,
rendering each message the flow hands over through `handlers/render/`."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from slack_bolt import Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from bot.background.runtime import Runtime
from bot.crisis.incidents import IncidentSnapshot, home_incidents
from bot.flows.draft_messages import AlreadyDrafting, DraftPlaceholder, DraftShown
from bot.flows.port import (
    Brief,
    Channel,
    DigestMessage,
    EscalationMessage,
    Message,
    NarrativesMessage,
    Notice,
    Opened,
    OpenFailed,
    Resolved,
    SlackFailure,
    SpikeAlertMessage,
    StakeholderUpdateMessage,
    UpdateNotPosted,
    UpdateOverdue,
    UpdatePosted,
)
from bot.flows.update_messages import UPDATE_MARK
from bot.infra.errors import is_transient
from bot.listening.digests import summary_line
from bot.tasks.tasks import open_tasks_of
from handlers.render import drafts as render_drafts
from handlers.render import publishing as render_publishing
from handlers.render import updates as render_updates
from handlers.render.alerts import render_spike_alert
from handlers.render.digest import render_digest
from handlers.render.escalations import escalation_text, render_escalation
from handlers.render.home import home_view
from handlers.render.incident import (
    brief_blocks,
    brief_text,
    open_failed_text,
    opened_blocks,
    purpose_text,
    resolve_blocks,
    resolve_text,
    topic_text,
)
from handlers.render.narratives import render_narratives
from handlers.render.tasks import render_task_message
from models import transaction, utcnow

log = logging.getLogger(__name__)

# How many of a channel's latest messages are searched for a stakeholder update's marker.
MARKED_LOOKBACK = 200
HOME_RESOLVED_SHOWN = 10  # recently resolved incidents on the App Home
# conversations.invite takes 1–1,000 users per call (docs.slack.dev/reference/methods/conversations.invite).
INVITE_BATCH = 1000

# How to answer the person who asked: (text, blocks) → an ephemeral message or a DM.
Tell = Callable[[str, Sequence[Block] | None], None]


def render(message: Message) -> tuple[str, list[Block] | None]:
    """A flow's message as Slack's (fallback text, blocks)."""
    match message:
        case Notice(text=text):
            return text, None
        case DraftPlaceholder(draft=draft):
            return render_drafts.drafting_message(draft)
        case DraftShown(draft=draft, panel=panel):
            return render_drafts.render_draft(draft, render_publishing.publish_blocks(draft, panel) if panel else None)
        case AlreadyDrafting(draft=draft, link=link):
            return render_drafts.notice(render_drafts.already_drafting_text(draft, link))
        case Resolved(summary=summary):
            return resolve_text(summary), resolve_blocks(summary)
        case Brief(incident=incident, digest_minutes=minutes):
            return brief_text(incident), brief_blocks(incident, minutes)
        case Opened(incident=incident):
            return f"Incident opened: <#{incident.channel_id}>", opened_blocks(incident)
        case OpenFailed(title=title, step=step, problem=problem):
            return open_failed_text(title, step, problem), None
        case DigestMessage(figures=figures, brand=brand):
            return summary_line(figures), render_digest(figures, brand)
        case SpikeAlertMessage(brand=brand, verdict=verdict, severity=severity, explanation=explanation,
                               incident_note=note):
            text = f"Mention spike: {verdict.count} mentions in {verdict.minutes} minutes"
            return text, render_spike_alert(brand, verdict, severity, explanation, incident_note=note)
        case EscalationMessage(view=view):
            return escalation_text(view), render_escalation(view)
        case NarrativesMessage(narratives=narratives, window_minutes=minutes, brand=brand):
            count = len(narratives.narratives)
            return f"{count} narrative{'s' * (count != 1)} in the last {minutes} min", render_narratives(
                narratives, minutes, brand)
        case StakeholderUpdateMessage() | UpdatePosted() | UpdateNotPosted() | UpdateOverdue():
            return render_updates.render(message)
    if (rendered := render_task_message(message)) is not None:
        return rendered
    raise TypeError(f"no rendering for {type(message).__name__}")


def marker(message: Message) -> dict[str, Any] | None:
    """The metadata a message is posted with, so it can be found again (a stakeholder update, by its id)."""
    if isinstance(message, StakeholderUpdateMessage):
        return {"event_type": UPDATE_MARK, "event_payload": {"key": str(message.draft_id)}}
    return None


def unfurls(message: Message) -> bool:
    """Whether Slack may unfurl the message's links (a quoted post's preview would bury the figures)."""
    return not isinstance(message, DigestMessage | EscalationMessage | SpikeAlertMessage | NarrativesMessage)


def respond_teller(respond: Respond) -> Tell:
    """Answer through the request's response_url (slash commands, message buttons)."""

    def tell(text: str, blocks: Sequence[Block] | None = None) -> None:
        respond(response_type="ephemeral", replace_original=False, text=text, blocks=list(blocks or []) or None)

    return tell


def user_teller(client: WebClient, user_id: str, channel_id: str | None) -> Tell:
    """Answer privately in `channel_id` when the person is in it, else by DM (modals, the App Home)."""

    def tell(text: str, blocks: Sequence[Block] | None = None) -> None:
        if channel_id:
            try:
                client.chat_postEphemeral(channel=channel_id, user=user_id, text=text, blocks=blocks or None)
                return
            except SlackApiError as exc:
                log.info("ephemeral to %s in %s failed (%s); sending a DM", user_id, channel_id,
                         exc.response.get("error"))
        client.chat_postMessage(channel=user_id, text=text, blocks=blocks or None)

    return tell


@contextmanager
def slack_call(method: str) -> Iterator[None]:
    """Turn the client's exceptions (after its own retries) into the port's `SlackFailure`."""
    try:
        yield
    except SlackApiError as exc:
        code = str(exc.response.get("error") or "an error")
        raise SlackFailure(method, code, transient=is_transient(exc)) from exc
    except (SlackClientError, OSError) as exc:
        raise SlackFailure(method, "unreachable", transient=True) from exc


def bot_user_id(runtime: Runtime, client: WebClient) -> str | None:
    """The bot's own user id (never invited anywhere), asked once per process."""
    cached = runtime.extras.get("bot_user_id")
    if cached is None:
        try:
            cached = client.auth_test().get("user_id") or ""
        except SlackApiError:
            return None
        runtime.extras["bot_user_id"] = cached
    return str(cached) or None


def find_channel(client: WebClient, reference: str) -> str:
    """A channel id for `C…` or `#name` (looked up with conversations.list; the name itself if not listed)."""
    if not reference.startswith("#"):
        return reference
    name = reference[1:]
    cursor: str | None = None
    while True:
        page = client.conversations_list(types="public_channel,private_channel", exclude_archived=True,
                                         limit=200, cursor=cursor)
        channels: list[dict[str, str]] = page.get("channels") or []
        for channel in channels:
            if channel.get("name") == name:
                return str(channel["id"])
        cursor = (page.get("response_metadata") or {}).get("next_cursor")
        if not cursor:
            # chat.postMessage also accepts a channel name; let Slack answer if it is wrong.
            return reference


def invite(client: WebClient, channel_id: str, users: Sequence[str]) -> list[str]:
    """Invite `users` to the channel in as few calls as Slack allows; returns users Slack refused to invite.

    Users already in the channel are fine. Anyone Slack names as uninvitable is dropped and the rest are
    invited again, so one deactivated account does not keep the whole room out.
    """
    refused: list[str] = []
    for start in range(0, len(users), INVITE_BATCH):
        batch = list(users[start : start + INVITE_BATCH])
        while batch:
            try:
                client.conversations_invite(channel=channel_id, users=",".join(batch))
                break
            except SlackApiError as exc:
                if exc.response.get("error") == "already_in_channel":
                    break
                failed = {
                    str(item.get("user"))
                    for item in exc.response.get("errors") or []
                    if isinstance(item, dict) and item.get("error") != "already_in_channel"
                }
                if not failed & set(batch):
                    raise
                refused.extend(user for user in batch if user in failed)
                batch = [user for user in batch if user not in failed]
    return refused


# ---- For handlers answering with Block Kit they rendered themselves (modals, ephemerals, room posts): the
# same client, through this module, so this module stays the one place that calls the Web API. Errors are
# Slack's own (SlackApiError), for the handler to word.


def post_blocks(client: WebClient, channel_id: str, text: str, blocks: Sequence[Block] | None = None) -> str:
    """Post in a channel (or a DM, by user id); the message ts."""
    answer = client.chat_postMessage(channel=channel_id, text=text, blocks=blocks or None)
    return str(answer["ts"])


def update_blocks(client: WebClient, channel_id: str, ts: str, text: str, blocks: Sequence[Block]) -> None:
    client.chat_update(channel=channel_id, ts=ts, text=text, blocks=blocks)


def post_ephemeral(client: WebClient, channel_id: str, user_id: str, text: str,
                   blocks: Sequence[Block] | None = None) -> None:
    client.chat_postEphemeral(channel=channel_id, user=user_id, text=text, blocks=blocks or None)


def open_view(client: WebClient, trigger_id: str, view: View) -> None:
    client.views_open(trigger_id=trigger_id, view=view)


def publish_view(client: WebClient, user_id: str, view: View) -> None:
    client.views_publish(user_id=user_id, view=view)


class SlackGateway:
    """`SlackPort` over the Web API client; `tell` answers the person who asked, as `teller` does."""

    def __init__(self, runtime: Runtime, client: WebClient, teller: Tell) -> None:
        self.runtime = runtime
        self.client = client
        self.teller = teller

    def bot_user_id(self) -> str | None:
        return bot_user_id(self.runtime, self.client)

    def create_channel(self, name: str, *, private: bool) -> Channel | None:
        try:
            with slack_call("conversations.create"):
                answer: Any = self.client.conversations_create(name=name, is_private=private)
        except SlackFailure as failure:
            if failure.code == "name_taken":
                return None
            raise
        channel = answer["channel"]
        return Channel(str(channel["id"]), str(channel.get("name", name)), bool(channel.get("is_private", private)))

    def usergroup_members(self, usergroup: str) -> list[str]:
        with slack_call("usergroups.users.list"):
            answer = self.client.usergroups_users_list(usergroup=usergroup)
        return [str(user) for user in answer.get("users") or []]

    def invite(self, channel_id: str, users: Sequence[str]) -> list[str]:
        with slack_call("conversations.invite"):
            return invite(self.client, channel_id, users)

    def describe_channel(self, incident: IncidentSnapshot) -> None:
        assert incident.channel_id
        with slack_call("conversations.setTopic"):
            self.client.conversations_setTopic(channel=incident.channel_id, topic=topic_text(incident))
        with slack_call("conversations.setPurpose"):
            self.client.conversations_setPurpose(channel=incident.channel_id, purpose=purpose_text(incident))

    def find_channel(self, reference: str) -> str:
        with slack_call("conversations.list"):
            return find_channel(self.client, reference)

    def join(self, channel_id: str) -> None:
        with slack_call("conversations.join"):
            self.client.conversations_join(channel=channel_id)

    def find_marked(self, channel_id: str, mark: str, key: str) -> str | None:
        with slack_call("conversations.history"):
            answer = self.client.conversations_history(channel=channel_id, limit=MARKED_LOOKBACK,
                                                       include_all_metadata=True)
        for found in answer.get("messages") or []:
            metadata = found.get("metadata") or {}
            if metadata.get("event_type") == mark and (metadata.get("event_payload") or {}).get("key") == key:
                return str(found["ts"])
        return None

    def post(self, channel_id: str, message: Message) -> str:
        text, blocks = render(message)
        unfurl = None if unfurls(message) else False  # None: Slack's default (the client drops None)
        with slack_call("chat.postMessage"):
            answer = self.client.chat_postMessage(channel=channel_id, text=text, blocks=blocks,
                                                  unfurl_links=unfurl, unfurl_media=unfurl,
                                                  metadata=marker(message))
        return str(answer["ts"])

    def upload(self, channel_id: str, *, content: bytes, filename: str, title: str, alt_text: str,
               thread_ts: str | None = None) -> None:
        with slack_call("files.uploadV2"):
            self.client.files_upload_v2(channel=channel_id, thread_ts=thread_ts, file=content, filename=filename,
                                        title=title, alt_txt=alt_text)

    def permalink(self, channel_id: str, ts: str) -> str:
        with slack_call("chat.getPermalink"):
            return str(self.client.chat_getPermalink(channel=channel_id, message_ts=ts)["permalink"])

    def upload_file(self, channel_id: str, path: Path, *, filename: str, title: str, comment: str) -> str | None:
        with slack_call("files.uploadV2"):
            answer = self.client.files_upload_v2(channel=channel_id, file=str(path), filename=filename, title=title,
                                                 initial_comment=comment)
        files = answer.get("files") or [answer.get("file") or {}]
        return files[0].get("id") if files else None

    def user_profile(self, user_id: str) -> dict[str, Any]:
        with slack_call("users.info"):
            return dict(self.client.users_info(user=user_id)["user"])

    def publish_home(self, user_id: str) -> None:
        """The Home tab for one person: the incidents they may see (a private one only to its people) and
        their own open tasks."""
        with transaction(self.runtime.sessions) as session:
            open_incidents, resolved = home_incidents(session, self.runtime.plan, user_id,
                                                      resolved_limit=HOME_RESOLVED_SHOWN)
            tasks = open_tasks_of(session, user_id)
        with slack_call("views.publish"):
            publish_view(self.client, user_id, home_view(open_incidents, resolved, utcnow(), tasks))

    def pin(self, channel_id: str, ts: str) -> None:
        try:
            with slack_call("pins.add"):
                self.client.pins_add(channel=channel_id, timestamp=ts)
        except SlackFailure as failure:
            if failure.code != "already_pinned":
                raise

    def tell(self, message: Message) -> None:
        text, blocks = render(message)
        self.teller(text, blocks)

    def update(self, channel_id: str, ts: str, message: Message) -> None:
        text, blocks = render(message)
        with slack_call("chat.update"):
            self.client.chat_update(channel=channel_id, ts=ts, text=text, blocks=blocks)

    def known_user(self, user_id: str) -> bool:
        try:
            with slack_call("users.info"):
                answer = self.client.users_info(user=user_id)
        except SlackFailure as failure:
            if failure.code == "user_not_found":
                return False
            raise
        user = answer.get("user") or {}
        return not user.get("deleted") and not user.get("is_bot")

    def archive(self, channel_id: str) -> None:
        try:
            with slack_call("conversations.archive"):
                self.client.conversations_archive(channel=channel_id)
        except SlackFailure as failure:
            if failure.code != "already_archived":
                raise


def client_gateway(runtime: Runtime, client: WebClient) -> SlackGateway:
    """A gateway for work that follows another capability's (a hook, a refresh): nobody asked for it, so a
    `tell` is logged."""

    def log_only(text: str, blocks: Sequence[Block] | None = None) -> None:
        log.info("follow-up work had something to tell: %s", text)

    return SlackGateway(runtime, client, log_only)


def job_gateway(runtime: Runtime) -> SlackGateway:
    """The gateway for scheduled jobs, on the runtime's client (a drill's marks every message DRILL).
    Nobody asked, so there is no one to tell: a `tell` is only logged."""

    def log_only(text: str, blocks: Sequence[Block] | None = None) -> None:
        log.warning("a scheduled job had something to tell, and nobody asked: %s", text)

    return SlackGateway(runtime, runtime.slack, log_only)
