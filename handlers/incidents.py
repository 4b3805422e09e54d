"""`/crisis open`, `severity`, `status`, `resolve`; the *Open incident* form and button.

Opening itself is the flow `bot.flows.opening`, run after the ack against the Slack gateway.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.background.runtime import Runtime
from bot.crisis.commands import form_of
from bot.crisis.incidents import (
    IncidentError,
    OpenArgs,
    change_severity,
    parse_open_args,
    validate_open,
)
from bot.crisis.plan import SEVERITIES
from bot.crisis.roles import RoleError
from bot.crisis.room import RoomError, StatusSummary, clean_text, record_status_update, status_summary
from bot.flows import opening, resolving
from bot.flows.room import refresh_homes, refresh_room, snapshot
from bot.infra.errors import describe, is_transient
from bot.infra.mrkdwn import escape_mrkdwn
from handlers.commands import CommandRequest
from handlers.interaction import clicker_teller
from handlers.queued import Submit, WorkTable, submit_or_refuse
from handlers.render.incident import (
    FORM_TITLE,
    OPEN_ACTION,
    OPEN_CALLBACK,
    open_form,
    read_open_form,
    section,
    severity_change_text,
    status_blocks,
    status_text,
    status_update_blocks,
    status_update_text,
)
from handlers.slack_gateway import (
    SlackGateway,
    Tell,
    client_gateway,
    open_view,
    post_blocks,
    respond_teller,
    user_teller,
)
from models import reading, transaction, utcnow

log = logging.getLogger(__name__)



def sync_scheduler(runtime: Runtime) -> None:
    """Let the scheduler re-read open incidents (digest times changed, or an incident opened or closed)."""
    if runtime.scheduler is not None:
        try:
            runtime.scheduler.sync()
        except Exception:
            # The scheduler also re-syncs on its own timer; a failed nudge only delays it.
            log.exception("scheduler sync failed")


# ---------------------------------------------------------------------------------------------
# Opening
# ---------------------------------------------------------------------------------------------


def opens_the_form(args: str, runtime: Runtime) -> bool:
    """`/crisis open` without a title shows the form, which must open inside Slack's trigger window."""
    try:
        return not parse_open_args(args, runtime.plan.playbooks).title
    except IncidentError:
        return False


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
    incident_id = opening.open_incident(
        request.runtime,
        request.gateway(),
        opener=request.user_id,
        title=args.title,
        severity=args.severity,
        playbook=args.playbook,
    )
    refresh_homes(request.runtime, client_gateway(request.runtime, request.client), incident_id)  # their Home tabs


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
        open_view(client, trigger_id, view)
    except SlackApiError as exc:
        tell(
            f"The form could not be opened: {describe(exc)}. Try again, or use `{form_of('open')}`.", None
        )


def handle_open_submission(ack: Ack, body: dict[str, Any], runtime: Runtime, submit: Submit) -> None:
    """The form was submitted: problems go back inline; otherwise the open is queued (`submit`, for
    `OPEN_FROM_FORM`) and the modal closes."""
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
    submit(ack, body, FORM_TITLE)


OPEN_FROM_FORM = "incidents:open-from-form"


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
        incident_id = opening.open_incident(
            runtime,
            SlackGateway(runtime, client, tell),
            opener=user_id,
            title=values["title"],
            severity=values["severity"] or None,
            playbook=values["playbook"] or None,
            description=values["description"],
        )
        refresh_homes(runtime, client_gateway(runtime, client), incident_id)  # their Home tabs show it
    except Exception as exc:
        if is_transient(exc):
            raise  # the worker tries it again; the open resumes from its failed step
        log.exception("open from the form failed")
        tell(f"Opening the incident failed: {describe(exc)}. Nothing was lost; try again.", None)


def handle_open_button(
    ack: Ack, body: dict[str, Any], client: WebClient, respond: Respond, runtime: Runtime
) -> None:
    """*Open incident* (App Home, spike alerts): the form, prefilled from the button's value."""
    ack()
    action = (body.get("actions") or [{}])[0]
    channel_id = (body.get("channel") or {}).get("id")
    tell = clicker_teller(body, client, respond)
    show_open_form(
        client, body.get("trigger_id", ""), tell, parse_prefill(action.get("value")), channel_id, runtime
    )


# ---------------------------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------------------------


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
    gateway = client_gateway(runtime, request.client)
    problems = refresh_room(runtime, gateway, request.incident_id)
    label = runtime.plan.severities[change.new].label  # type: ignore[index]
    text = severity_change_text(change.old, change.new, label, request.user_id)
    post_blocks(request.client, request.channel_id, text, [section(text)])
    refresh_homes(runtime, gateway, request.incident_id)
    if problems:
        request.reply(f"Severity changed, but Slack would not update {', '.join(problems)}.")


def status_command(request: CommandRequest) -> None:
    """`/crisis status` shows the state (ephemeral); `/crisis status <text>` posts a status update."""
    assert request.incident_id is not None
    runtime = request.runtime
    if not request.args:
        incident_id = request.incident_id

        def read() -> StatusSummary:
            with reading(runtime.sessions) as session:
                return status_summary(session, runtime.plan, incident_id)

        # At most STATUS_SECONDS old, and its "open for" counted from now.
        summary = replace(runtime.recent_status.get(incident_id, read), now=utcnow())
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
    ts = post_blocks(request.client, request.channel_id, status_update_text(text), blocks)
    with transaction(runtime.sessions) as session:
        record_status_update(session, request.incident_id, text, request.user_id, ts=ts)


# ---------------------------------------------------------------------------------------------
# Resolving
# ---------------------------------------------------------------------------------------------


def resolve_command(request: CommandRequest) -> None:
    """`/crisis resolve [summary]`, by the lead only (bot/flows/resolving.py tells the room)."""
    assert request.incident_id is not None
    gateway = request.gateway()
    try:
        problems = resolving.resolve(request.runtime, gateway, request.incident_id, request.user_id, request.args)
    except (RoleError, IncidentError) as exc:
        request.reply(str(exc))
        return
    if problems:
        request.reply(f"Resolved, but Slack would not update {', '.join(problems)}.")


def register(app: App, runtime: Runtime, work: WorkTable) -> None:
    submit_open = submit_or_refuse(runtime, work, OPEN_FROM_FORM)

    @app.view(OPEN_CALLBACK)
    def open_submitted(ack: Ack, body: dict[str, Any]) -> None:
        handle_open_submission(ack, body, runtime, submit_open)

    @app.action(OPEN_ACTION)
    def open_clicked(ack: Ack, body: dict[str, Any], client: WebClient, respond: Respond) -> None:
        handle_open_button(ack, body, client, respond, runtime)
