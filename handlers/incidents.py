"""`/crisis open`, `severity`, `status`, `resolve`; the *Open incident* form and button.

Opening is a sequence of Slack calls after the ack (channel, invite, topic, brief, pin). Each done
step is on the timeline, so when one fails after the client's retries the opener is told, the
incident keeps `open_error`, and running the same open again resumes from the failed step.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.models.blocks import Block

from bot.channel_names import channel_name
from bot.commands import form_of
from bot.incidents import (
    ALREADY_OPEN,
    IN_PROGRESS,
    STEP_BRIEF,
    STEP_CHANNEL,
    STEP_INVITE,
    STEP_PIN,
    STEP_TOPIC,
    IncidentError,
    IncidentSnapshot,
    OpenArgs,
    change_severity,
    done_steps,
    finish_open,
    incident_snapshot,
    parse_open_args,
    record_brief,
    record_channel,
    record_open_failure,
    record_step,
    resolve_incident,
    resolve_summary,
    start_open,
    validate_open,
)
from bot.mrkdwn import escape_mrkdwn
from bot.plan import SEVERITIES
from bot.roles import RoleError, add_holders
from bot.room import RoomError, clean_text, record_status_update, status_summary
from bot.runtime import Runtime
from handlers.commands import CommandRequest, subcommand
from handlers.exports import upload_export
from handlers.queued import queued, submit_or_refuse
from handlers.render.incident import (
    FORM_TITLE,
    OPEN_ACTION,
    OPEN_CALLBACK,
    brief_blocks,
    brief_text,
    open_failed_text,
    open_form,
    opened_blocks,
    purpose_text,
    read_open_form,
    resolve_blocks,
    resolve_text,
    section,
    severity_change_text,
    status_blocks,
    status_text,
    status_update_blocks,
    status_update_text,
    topic_text,
)
from models import transaction, utcnow

log = logging.getLogger(__name__)

# conversations.invite takes 1–1,000 users per call (docs.slack.dev/reference/methods/conversations.invite).
INVITE_BATCH = 1000
MAX_NAME_ATTEMPTS = 30

# How to answer the person who asked: (text, blocks) → an ephemeral message or a DM.
Tell = Callable[[str, Sequence[Block] | None], None]


# ---------------------------------------------------------------------------------------------
# Answering people
# ---------------------------------------------------------------------------------------------


def respond_teller(respond: Respond) -> Tell:
    """Answer through the request's response_url (slash commands, message buttons)."""

    def tell(text: str, blocks: Sequence[Block] | None = None) -> None:
        respond(
            response_type="ephemeral", replace_original=False, text=text, blocks=list(blocks or []) or None
        )

    return tell


def user_teller(client: WebClient, user_id: str, channel_id: str | None) -> Tell:
    """Answer privately in `channel_id` when the person is in it, else by DM (modals, the App Home)."""

    def tell(text: str, blocks: Sequence[Block] | None = None) -> None:
        if channel_id:
            try:
                client.chat_postEphemeral(channel=channel_id, user=user_id, text=text, blocks=blocks or None)
                return
            except SlackApiError as exc:
                log.info(
                    "ephemeral to %s in %s failed (%s); sending a DM",
                    user_id,
                    channel_id,
                    exc.response.get("error"),
                )
        client.chat_postMessage(channel=user_id, text=text, blocks=blocks or None)

    return tell


def slack_error(exc: Exception) -> str:
    """What went wrong with a Slack call, in words for the person who asked."""
    if isinstance(exc, SlackApiError):
        return f"Slack answered `{exc.response.get('error', 'an error')}`"
    if isinstance(exc, SlackClientError | OSError):
        return "Slack could not be reached"
    return f"an unexpected error ({type(exc).__name__})"


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


def sync_scheduler(runtime: Runtime) -> None:
    """Let the scheduler re-read open incidents (digest times changed, or an incident opened or closed)."""
    if runtime.scheduler is not None:
        try:
            runtime.scheduler.sync()
        except Exception:
            # The scheduler also re-syncs on its own timer; a failed nudge only delays it.
            log.exception("scheduler sync failed")


def snapshot(runtime: Runtime, incident_id: int) -> IncidentSnapshot:
    with transaction(runtime.sessions) as session:
        return incident_snapshot(session, runtime.plan, incident_id)


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


def refresh_room(runtime: Runtime, client: WebClient, incident_id: int) -> list[str]:
    """Bring the pinned brief and the channel topic up to date; returns what could not be updated."""
    incident = snapshot(runtime, incident_id)
    problems: list[str] = []
    if not incident.channel_id:
        return problems
    if incident.brief_ts:
        try:
            client.chat_update(
                channel=incident.channel_id,
                ts=incident.brief_ts,
                text=brief_text(incident),
                blocks=brief_blocks(incident, runtime.plan.digest_minutes(incident.severity)),
            )
        except (SlackApiError, SlackClientError) as exc:
            log.warning("brief update failed for incident %s: %s", incident_id, exc)
            problems.append(f"the brief ({slack_error(exc)})")
    try:
        client.conversations_setTopic(channel=incident.channel_id, topic=topic_text(incident))
    except (SlackApiError, SlackClientError) as exc:
        log.warning("topic update failed for incident %s: %s", incident_id, exc)
        problems.append(f"the topic ({slack_error(exc)})")
    return problems


def post_in_room(client: WebClient, channel_id: str, text: str, blocks: Sequence[Block] | None = None) -> str:
    """Post in the incident channel; returns the message ts."""
    answer = client.chat_postMessage(channel=channel_id, text=text, blocks=blocks or None)
    return str(answer["ts"])


# ---------------------------------------------------------------------------------------------
# Opening
# ---------------------------------------------------------------------------------------------


def _step_channel(runtime: Runtime, client: WebClient, incident: IncidentSnapshot, actor: str) -> None:
    day = incident.opened_at.astimezone(runtime.plan.zone).date()
    settings = runtime.plan.channel
    for attempt in range(1, MAX_NAME_ATTEMPTS + 1):
        name = channel_name(settings.prefix, day, incident.title, attempt)
        try:
            answer = client.conversations_create(name=name, is_private=settings.private)
        except SlackApiError as exc:
            if exc.response.get("error") == "name_taken":
                continue
            raise
        channel = answer["channel"]
        with transaction(runtime.sessions) as session:
            record_channel(session, incident.id, channel["id"], channel.get("name", name), actor)
        return
    raise IncidentError(f"every channel name up to {name} is taken")


def _step_invite(runtime: Runtime, client: WebClient, incident: IncidentSnapshot, actor: str) -> None:
    assert incident.channel_id
    plan = runtime.plan
    group_members: dict[str, list[str]] = {}
    for role_name, role in plan.roles.items():
        if role.usergroup:
            answer = client.usergroups_users_list(usergroup=role.usergroup)
            group_members[role_name] = [str(u) for u in answer.get("users") or []]
    holders = {user for role in incident.roles for user in role.holders}
    everyone = [incident.opened_by, *sorted(holders), *(u for users in group_members.values() for u in users)]
    bot = bot_user_id(runtime, client)
    users = [user for user in dict.fromkeys(everyone) if user and user != bot]
    refused = invite(client, incident.channel_id, users) if users else []
    with transaction(runtime.sessions) as session:
        for role_name, members in group_members.items():
            group = plan.roles[role_name].usergroup
            add_holders(
                session,
                incident.id,
                role_name,
                [m for m in members if m != bot],
                actor,
                reason=f" (user group {group})",
            )
        record_step(
            session,
            incident.id,
            STEP_INVITE,
            f"Invited {len(users) - len(refused)} people",
            actor,
            {"users": [u for u in users if u not in refused], "refused": refused},
        )


def _step_topic(runtime: Runtime, client: WebClient, incident: IncidentSnapshot, actor: str) -> None:
    assert incident.channel_id
    client.conversations_setTopic(channel=incident.channel_id, topic=topic_text(incident))
    client.conversations_setPurpose(channel=incident.channel_id, purpose=purpose_text(incident))
    with transaction(runtime.sessions) as session:
        record_step(session, incident.id, STEP_TOPIC, "Topic and purpose set", actor)


def _step_brief(runtime: Runtime, client: WebClient, incident: IncidentSnapshot, actor: str) -> None:
    assert incident.channel_id
    ts = post_in_room(
        client,
        incident.channel_id,
        brief_text(incident),
        brief_blocks(incident, runtime.plan.digest_minutes(incident.severity)),
    )
    with transaction(runtime.sessions) as session:
        record_brief(session, incident.id, ts, actor)


def _step_pin(runtime: Runtime, client: WebClient, incident: IncidentSnapshot, actor: str) -> None:
    assert incident.channel_id and incident.brief_ts
    try:
        client.pins_add(channel=incident.channel_id, timestamp=incident.brief_ts)
    except SlackApiError as exc:
        if exc.response.get("error") != "already_pinned":
            raise
    with transaction(runtime.sessions) as session:
        record_step(session, incident.id, STEP_PIN, "Brief pinned", actor)


OPEN_FLOW: tuple[tuple[str, Callable[[Runtime, WebClient, IncidentSnapshot, str], None]], ...] = (
    (STEP_CHANNEL, _step_channel),
    (STEP_INVITE, _step_invite),
    (STEP_TOPIC, _step_topic),
    (STEP_BRIEF, _step_brief),
    (STEP_PIN, _step_pin),
)


def open_incident(
    runtime: Runtime,
    client: WebClient,
    tell: Tell,
    *,
    opener: str,
    title: str,
    severity: str | None,
    playbook: str | None,
    description: str = "",
) -> int | None:
    """Record the incident and set up its war room; returns its id (None when nothing was started)."""
    start = start_open(
        runtime.sessions,
        runtime.plan,
        opener=opener,
        title=title,
        severity=severity,
        playbook=playbook,
        description=description,
        drill=runtime.drill,
    )
    if start.outcome == ALREADY_OPEN:
        tell(f"You already opened this incident today: <#{start.channel_id}>.", None)
        return start.incident_id
    if start.outcome == IN_PROGRESS:
        tell("This incident is being opened right now; its channel will appear in a moment. "
             "If it does not within two minutes, run the same command again to finish it.", None)
        return start.incident_id
    complete_open(runtime, client, tell, start.incident_id, opener)
    return start.incident_id


def complete_open(runtime: Runtime, client: WebClient, tell: Tell, incident_id: int, actor: str) -> bool:
    """Run every open step not yet done; on a failure record it and tell the opener. True when open."""
    with transaction(runtime.sessions) as session:
        done = done_steps(session, incident_id)
    for step, run in OPEN_FLOW:
        if step in done:
            continue
        incident = snapshot(runtime, incident_id)
        try:
            run(runtime, client, incident, actor)
        except Exception as exc:
            if not isinstance(exc, SlackApiError | SlackClientError | OSError | IncidentError):
                log.exception("opening incident %s failed at %s", incident_id, step)
            problem = str(exc) if isinstance(exc, IncidentError) else slack_error(exc)
            with transaction(runtime.sessions) as session:
                record_open_failure(session, incident_id, step, problem, actor)
            tell(open_failed_text(incident.title, step, problem), None)
            return False
    with transaction(runtime.sessions) as session:
        finish_open(session, runtime.plan, incident_id, actor)
    sync_scheduler(runtime)
    incident = snapshot(runtime, incident_id)
    tell(f"Incident opened: <#{incident.channel_id}>", opened_blocks(incident))
    return True


def opens_the_form(args: str, runtime: Runtime) -> bool:
    """`/crisis open` without a title shows the form, which must open inside Slack's trigger window."""
    try:
        return not parse_open_args(args, runtime.plan.playbooks).title
    except IncidentError:
        return False


@subcommand("open", needs_incident=False, inline_when=opens_the_form)
def open_command(request: CommandRequest) -> None:
    """`/crisis open [sev1-4] [playbook] <title>`; with no title, the form."""
    plan = request.runtime.plan
    try:
        args = parse_open_args(request.args, plan.playbooks)
    except IncidentError as exc:
        request.reply(str(exc), form=form_of("open"))
        return
    if not args.title:
        show_open_form(
            request.client,
            request.trigger_id,
            respond_teller(request.respond),
            plan_prefill(args),
            request.channel_id,
            request.runtime,
        )
        return
    open_incident(
        request.runtime,
        request.client,
        respond_teller(request.respond),
        opener=request.user_id,
        title=args.title,
        severity=args.severity,
        playbook=args.playbook,
    )


def plan_prefill(args: OpenArgs) -> dict[str, str]:
    """What `/crisis open` named before the (missing) title, to preset in the form."""
    return {key: value for key, value in (("severity", args.severity), ("playbook", args.playbook)) if value}


def parse_prefill(value: str | None) -> dict[str, str]:
    """The *Open incident* button's value: empty, or a JSON object with title, severity, playbook."""
    if not value:
        return {}
    try:
        data = json.loads(value)
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    return {
        key: str(data[key])
        for key in ("title", "severity", "playbook", "description")
        if isinstance(data.get(key), str | int | float) and str(data[key]).strip()
    }


def show_open_form(
    client: WebClient,
    trigger_id: str,
    tell: Tell,
    prefill: dict[str, str],
    channel_id: str | None,
    runtime: Runtime,
) -> None:
    """Open the *Open incident* modal; the channel it was asked from is where answers go."""
    if prefill.get("severity") not in SEVERITIES:
        prefill.pop("severity", None)
    view = open_form(runtime.plan, prefill, {"channel": channel_id or ""})
    try:
        client.views_open(trigger_id=trigger_id, view=view)
    except SlackApiError as exc:
        tell(
            f"The form could not be opened: {slack_error(exc)}. Try again, or use `{form_of('open')}`.", None
        )


def handle_open_submission(ack: Ack, body: dict[str, Any], runtime: Runtime) -> None:
    """The form was submitted: problems go back inline; otherwise the open is queued and the modal closes."""
    values = read_open_form(body.get("view") or {})
    problems = validate_open(
        runtime.plan,
        values["title"],
        values["severity"] or None,
        values["playbook"] or None,
        values["description"],
    )
    if problems:
        ack(response_action="errors", errors=problems)
        return
    submit_or_refuse(ack, runtime, OPEN_FROM_FORM, body, FORM_TITLE)


OPEN_FROM_FORM = "incidents:open-from-form"


@queued(OPEN_FROM_FORM, "opening the incident")
def open_from_form(runtime: Runtime, body: dict[str, Any], client: WebClient, _respond: Respond) -> None:
    """A validated open form (run from the queue): open the incident, telling the opener how it went."""
    view = body.get("view") or {}
    values = read_open_form(view)
    user_id = (body.get("user") or {}).get("id", "")
    try:
        metadata = json.loads(view.get("private_metadata") or "{}")
    except ValueError:
        metadata = {}
    tell = user_teller(client, user_id, str(metadata.get("channel") or "") or None)
    try:
        open_incident(
            runtime,
            client,
            tell,
            opener=user_id,
            title=values["title"],
            severity=values["severity"] or None,
            playbook=values["playbook"] or None,
            description=values["description"],
        )
    except Exception as exc:
        log.exception("open from the form failed")
        tell(f"Opening the incident failed: {slack_error(exc)}. Nothing was lost; try again.", None)


def handle_open_button(
    ack: Ack, body: dict[str, Any], client: WebClient, respond: Respond, runtime: Runtime
) -> None:
    """*Open incident* (App Home, spike alerts): the form, prefilled from the button's value."""
    ack()
    action = (body.get("actions") or [{}])[0]
    user_id = (body.get("user") or {}).get("id", "")
    channel_id = (body.get("channel") or {}).get("id")
    tell = respond_teller(respond) if body.get("response_url") else user_teller(client, user_id, channel_id)
    show_open_form(
        client, body.get("trigger_id", ""), tell, parse_prefill(action.get("value")), channel_id, runtime
    )


# ---------------------------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------------------------


@subcommand("severity")
def severity_command(request: CommandRequest) -> None:
    """`/crisis severity <sev1-4>`."""
    words = request.args.split()
    if len(words) != 1 or words[0].lower() not in SEVERITIES:
        problem = (
            "Say which severity: sev1, sev2, sev3 or sev4."
            if not words
            else f"`{escape_mrkdwn(request.args[:30])}` is not a severity: use sev1, sev2, sev3 or sev4."
        )
        request.reply(problem, form=form_of("severity"))
        return
    assert request.incident_id is not None
    runtime = request.runtime
    try:
        with transaction(runtime.sessions) as session:
            change = change_severity(session, runtime.plan, request.incident_id, words[0], request.user_id)
    except IncidentError as exc:
        request.reply(str(exc))
        return
    sync_scheduler(runtime)
    problems = refresh_room(runtime, request.client, request.incident_id)
    label = runtime.plan.severities[change.new].label  # type: ignore[index]
    text = severity_change_text(change.old, change.new, label, request.user_id)
    post_in_room(request.client, request.channel_id, text, [section(text)])
    if problems:
        request.reply(f"Severity changed, but Slack would not update {', '.join(problems)}.")


@subcommand("status", when_resolved=True)
def status_command(request: CommandRequest) -> None:
    """`/crisis status` shows the state (ephemeral); `/crisis status <text>` posts a status update."""
    assert request.incident_id is not None
    runtime = request.runtime
    if not request.args:
        with transaction(runtime.sessions) as session:
            summary = status_summary(session, runtime.plan, request.incident_id)
        request.respond(response_type="ephemeral", text=status_text(summary), blocks=status_blocks(summary))
        return
    try:
        text = clean_text(request.args, "status update")
    except RoomError as exc:
        request.reply(str(exc), form=form_of("status"))
        return
    incident = snapshot(runtime, request.incident_id)
    blocks = status_update_blocks(text, incident, request.user_id, utcnow())
    # Posted first, then logged with its ts: a post Slack refuses leaves nothing half-done.
    ts = post_in_room(request.client, request.channel_id, status_update_text(text), blocks)
    with transaction(runtime.sessions) as session:
        record_status_update(session, request.incident_id, text, request.user_id, ts=ts)


# ---------------------------------------------------------------------------------------------
# Resolving
# ---------------------------------------------------------------------------------------------


@subcommand("resolve")
def resolve_command(request: CommandRequest) -> None:
    """`/crisis resolve [summary]`, by the lead only."""
    assert request.incident_id is not None
    runtime = request.runtime
    try:
        with transaction(runtime.sessions) as session:
            resolve_incident(session, runtime.plan, request.incident_id, request.user_id, request.args)
    except (RoleError, IncidentError) as exc:
        request.reply(str(exc))
        return
    sync_scheduler(runtime)
    problems = refresh_room(runtime, request.client, request.incident_id)
    problems += after_resolve(runtime, request.client, request.incident_id, request.user_id)
    if problems:
        request.reply(f"Resolved, but Slack would not update {', '.join(problems)}.")


def after_resolve(runtime: Runtime, client: WebClient, incident_id: int, actor: str) -> list[str]:
    """Post the summary and upload the Markdown export; returns what Slack refused, for the lead to see."""
    with transaction(runtime.sessions) as session:
        summary = resolve_summary(session, runtime.plan, incident_id)
    if not summary.incident.channel_id:
        return []
    post_in_room(client, summary.incident.channel_id, resolve_text(summary), resolve_blocks(summary))
    try:
        upload_export(runtime, client, incident_id, "md", actor)
    except SlackApiError as exc:
        log.warning("export upload after resolve failed: %s", exc.response.get("error"))
        return ["the Markdown export upload (run `/crisis export md` to try again)"]
    return []


def register(app: App, runtime: Runtime) -> None:
    @app.view(OPEN_CALLBACK)
    def open_submitted(ack: Ack, body: dict[str, Any]) -> None:
        handle_open_submission(ack, body, runtime)

    @app.action(OPEN_ACTION)
    def open_clicked(ack: Ack, body: dict[str, Any], client: WebClient, respond: Respond) -> None:
        handle_open_button(ack, body, client, respond, runtime)
