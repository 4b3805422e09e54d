"""Drafts in Slack: `/crisis draft`, *Draft reply*, and the draft message's Approve / Edit / Regenerate /
Reject / Retry buttons and modals. Every listener acks first; drafting runs after the ack."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient
from sqlalchemy.orm import Session

from bot.background.runtime import Runtime
from bot.crisis.commands import form_of
from bot.drafting import drafts, updates
from bot.drafting.drafts import DraftInputError, DraftView
from bot.flows import drafting
from bot.flows.updates import post_update
from bot.infra.errors import AlreadyTold
from handlers import tasks
from handlers.commands import CommandRequest
from handlers.interaction import (
    action_number,
    action_value,
    clicker_gateway,
    open_incident_here,
    surfaced,
    tell_privately,
    where,
)
from handlers.queued import Submit, Work, WorkTable, enqueue_listener, submit_or_refuse
from handlers.render import drafts as render
from handlers.slack_gateway import client_gateway, open_view
from models import transaction

log = logging.getLogger(__name__)
MESSAGE_SYNC_ROUNDS = 3
# How long a repeated request waits for the first one's message to exist, to link to it.
PLACEHOLDER_WAIT_SECONDS = 2.0


# ----------------------------------------------------------------------------------- /crisis draft


def draft_command(req: CommandRequest) -> None:
    """`/crisis draft [platform] <what to reply to>`."""
    try:
        platform, request = drafts.parse_draft_args(req.args)
    except DraftInputError as exc:
        req.reply(str(exc), form=form_of("draft"))
        return
    assert req.incident_id is not None
    drafting.start_draft(req.runtime, req.gateway(), incident_id=req.incident_id, platform=platform, request=request,
                         user_id=req.user_id, channel_id=req.channel_id)


# ----------------------------------------------------------------------------------- buttons and modals


def _answer(
    runtime: Runtime, client: WebClient, outcome: drafts.DraftOutcome, channel_id: str | None, user_id: str,
    verb: str, typed: str | None = None,
) -> None:
    """After a change: update the draft's message, or tell the clicker privately why nothing changed
    (with what they typed in a form, so it is not lost). A click on an older revision also refreshes the
    message, so what everyone sees, and can click, is the current revision."""
    if outcome.ok:
        if outcome.draft is not None:
            drafting.show_draft(runtime, client_gateway(runtime, client), outcome.draft.id)
        return
    answer_in = channel_id or (outcome.draft.channel_id if outcome.draft else None)
    tell_privately(client, answer_in, user_id, render.refusal_text(outcome, verb), typed)
    if outcome.refusal == "stale" and outcome.draft is not None:
        drafting.show_draft(runtime, client_gateway(runtime, client), outcome.draft.id)


def _draft_channel(runtime: Runtime, body: dict[str, Any]) -> str | None:
    submitted = _submitted_ref(body)
    if submitted is None:
        return None
    with transaction(runtime.sessions) as session:
        view = drafts.get_draft(session, submitted[0])
    return view.channel_id if view else None


def _clicked_ref(body: dict[str, Any]) -> tuple[int, int | None] | None:
    """(draft id, revision shown) from a draft button's value."""
    value = action_value(body)
    return render.parse_draft_ref(value) if value is not None else None


@dataclass(frozen=True)
class _Clicked:
    """A click on a draft's button: who, where, on which draft, and what the domain answered."""

    user_id: str
    channel_id: str
    draft_id: int
    outcome: drafts.DraftOutcome


def _on_clicked_draft(
    runtime: Runtime, body: dict[str, Any],
    decide: Callable[[Session, int, str, int | None], drafts.DraftOutcome],
) -> _Clicked | None:
    """Run `decide` (session, draft id, clicker, revision the message showed) in one transaction; None for
    a button that names no draft."""
    user_id, channel_id = where(body)
    clicked = _clicked_ref(body)
    if clicked is None:
        return None
    draft_id, revision = clicked
    with transaction(runtime.sessions) as session:
        outcome = decide(session, draft_id, user_id, revision)
    return _Clicked(user_id, channel_id, draft_id, outcome)


@surfaced("Drafting a reply")
def on_draft_reply(runtime: Runtime, body: dict[str, Any], client: WebClient) -> None:
    """*Draft reply* on a mention (digest): draft a reply to that mention in this incident."""
    user_id, channel_id = where(body)
    incident_id = open_incident_here(runtime, client, user_id, channel_id, "Draft reply",
                                     "This incident is resolved, so no more drafts are made here.")
    if incident_id is None:
        return
    mention_id = action_number(body)
    with transaction(runtime.sessions) as session:
        wanted = drafts.mention_request(session, mention_id) if mention_id is not None else None
    if wanted is None:
        tell_privately(client, channel_id, user_id, "That mention is no longer stored; nothing to reply to.")
        return
    drafting.start_draft(runtime, clicker_gateway(runtime, client, user_id, channel_id), incident_id=incident_id,
                         platform=wanted.platform, request=wanted.text, user_id=user_id, channel_id=channel_id,
                         mention_id=wanted.mention_id, reply_to_url=wanted.url)


@surfaced("Approving the draft")
def on_approve(runtime: Runtime, body: dict[str, Any], client: WebClient) -> None:
    four_eyes = runtime.plan.approval.four_eyes
    click = _on_clicked_draft(runtime, body, lambda session, draft_id, user_id, revision: drafts.approve_draft(
        session, draft_id, user_id, revision, four_eyes=four_eyes))
    if click is None:
        return
    outcome = click.outcome
    _answer(runtime, client, outcome, click.channel_id, click.user_id, "approve")
    if updates.to_post_after(outcome, click.user_id):
        post_update(runtime, clicker_gateway(runtime, client, click.user_id, click.channel_id), click.draft_id)
    if outcome.ok and outcome.draft is not None:
        tasks.after_approval(runtime, client, outcome.draft.incident_id)  # a statement task may be done now


@surfaced("Opening the reject form")
def on_reject(runtime: Runtime, body: dict[str, Any], client: WebClient) -> None:
    """Open the reason form, for the revision the message showed; refused at once if it could not be saved."""
    four_eyes = runtime.plan.approval.four_eyes
    _open_form(runtime, client, body, "reject", render.reject_modal,
               lambda session, draft_id, user_id, revision: drafts.decision_check(
                   session, draft_id, user_id, revision, four_eyes=four_eyes))


@surfaced("Opening the edit form")
def on_edit(runtime: Runtime, body: dict[str, Any], client: WebClient) -> None:
    """Open the edit form on the revision the message showed; refused at once if it could not be saved."""
    _open_form(runtime, client, body, "edit", render.edit_modal, drafts.change_check)


def _open_form(
    runtime: Runtime, client: WebClient, body: dict[str, Any], verb: str, modal: Callable[[DraftView], Any],
    check: Callable[[Session, int, str, int | None], drafts.DraftOutcome],
) -> None:
    """The form on the draft as checked (so on the revision clicked), or the refusal."""
    click = _on_clicked_draft(runtime, body, check)
    if click is None:
        return
    checked = click.outcome
    if not checked.ok or checked.draft is None:
        _answer(runtime, client, checked, click.channel_id, click.user_id, verb)
        return
    open_view(client, body["trigger_id"], modal(checked.draft))


@surfaced("Regenerating the draft")
def on_regenerate(runtime: Runtime, body: dict[str, Any], client: WebClient) -> None:
    click = _on_clicked_draft(runtime, body, drafts.regenerate_draft)
    if click is None:
        return
    new_draft = click.outcome.new_draft
    if not click.outcome.ok or new_draft is None:
        _answer(runtime, client, click.outcome, click.channel_id, click.user_id, "regenerate")
        return
    gateway = client_gateway(runtime, client)
    drafting.show_draft(runtime, gateway, click.draft_id)
    drafting.post_placeholder(runtime, gateway, new_draft)
    drafting.run_draft(runtime, gateway, new_draft.id)


@surfaced("Retrying the draft")
def on_retry(runtime: Runtime, body: dict[str, Any], client: WebClient) -> None:
    # A failed draft has no text, so no revision to check.
    click = _on_clicked_draft(runtime, body, lambda session, draft_id, user_id, _revision: drafts.retry_draft(
        session, draft_id, user_id))
    if click is None:
        return
    if not click.outcome.ok:
        _answer(runtime, client, click.outcome, click.channel_id, click.user_id, "retry")
        return
    gateway = client_gateway(runtime, client)
    drafting.show_draft(runtime, gateway, click.draft_id)  # back to "drafting…"
    drafting.run_draft(runtime, gateway, click.draft_id)


def _submitted(body: dict[str, Any], block_id: str) -> str:
    values = body.get("view", {}).get("state", {}).get("values", {})
    return ((values.get(block_id) or {}).get(block_id) or {}).get("value") or ""


def _submitted_ref(body: dict[str, Any]) -> tuple[int, int | None] | None:
    """(draft id, revision the form was opened on) from a draft modal's private_metadata."""
    return render.parse_draft_ref(str(body.get("view", {}).get("private_metadata") or ""))


def on_edit_submitted(ack: Ack, body: dict[str, Any], submit: Submit) -> None:
    _on_text_submitted(ack, body, render.EDIT_INPUT, "The reply cannot be empty.", submit)


def on_reject_submitted(ack: Ack, body: dict[str, Any], submit: Submit) -> None:
    _on_text_submitted(ack, body, render.REASON_INPUT, "Say why the draft is rejected.", submit)


def _on_text_submitted(ack: Ack, body: dict[str, Any], input_id: str, empty_error: str, submit: Submit) -> None:
    """A draft modal with one required text: an empty one is refused inline, otherwise the save is
    queued (`submit`) and the modal closes."""
    if not _submitted(body, input_id).strip():
        ack(response_action="errors", errors={input_id: empty_error})
        return
    if _submitted_ref(body) is None:
        ack()
        return
    submit(ack, body, input_id)


@surfaced("Saving the edit", channel_of=_draft_channel)
def save_edit(runtime: Runtime, body: dict[str, Any], client: WebClient) -> None:
    avoid, never_say = tuple(runtime.plan.tone.avoid), tuple(runtime.plan.tone.never_say)
    _decide_from_modal(runtime, body, client, render.EDIT_INPUT, "edit",
                       lambda session, draft_id, user_id, text, revision: drafts.edit_draft(
                           session, draft_id, user_id, text, revision, avoid, never_say))


@surfaced("Rejecting the draft", channel_of=_draft_channel)
def save_rejection(runtime: Runtime, body: dict[str, Any], client: WebClient) -> None:
    four_eyes = runtime.plan.approval.four_eyes
    _decide_from_modal(runtime, body, client, render.REASON_INPUT, "reject",
                       lambda session, draft_id, user_id, text, revision: drafts.reject_draft(
                           session, draft_id, user_id, text, revision, four_eyes=four_eyes))


def _decide_from_modal(
    runtime: Runtime, body: dict[str, Any], client: WebClient, input_id: str, verb: str,
    change: Callable[[Session, int, str, str, int | None], drafts.DraftOutcome],
) -> None:
    """Apply the modal's text to the revision it was opened on; update the draft's message, or tell the
    user why not, with their text (the modal has closed)."""
    user_id, _ = where(body)
    submitted = _submitted_ref(body)
    assert submitted is not None
    draft_id, revision = submitted
    typed = _submitted(body, input_id)
    with transaction(runtime.sessions) as session:
        outcome = change(session, draft_id, user_id, typed, revision)
    _answer(runtime, client, outcome, None, user_id, verb, typed=None if outcome.ok else typed)


def _acking(
    listener: Callable[[Runtime, dict[str, Any], WebClient], None], runtime: Runtime
) -> Callable[[Ack, dict[str, Any], WebClient], None]:
    """A Bolt listener that acks at once, then runs `listener` (it opens a modal, so it cannot wait
    for the queue: Slack's trigger_id expires after 3 seconds)."""

    def handle(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        with contextlib.suppress(AlreadyTold):  # the clicker was told; there is no job to fail
            listener(runtime, body, client)

    return handle


def queued_work(listener: Callable[[Runtime, dict[str, Any], WebClient], None]) -> Work:
    """`listener` as queued work (the work table's entries): it answers through the client, not `respond`."""
    return lambda runtime, body, client, _respond: listener(runtime, body, client)


# Buttons whose work runs from the job queue (committed before the ack), and the modals' saves: the
# names of their queued work (the work table, handlers/tables.py, says what runs under each).
REPLY, APPROVE, REGENERATE, RETRY = "draft:reply", "draft:approve", "draft:regenerate", "draft:retry"
QUEUED_BUTTONS = {render.DRAFT_REPLY: REPLY, render.APPROVE: APPROVE, render.REGENERATE: REGENERATE,
                  render.RETRY: RETRY}
SAVE_EDIT = "draft:save-edit"
SAVE_REJECTION = "draft:save-rejection"


def register(app: App, runtime: Runtime, work: WorkTable) -> None:
    """Attach the draft buttons and modals."""
    for action_id, name in QUEUED_BUTTONS.items():
        app.action(action_id)(enqueue_listener(runtime, work, name))
    # Edit and Reject open a modal at once.
    app.action(render.EDIT)(_acking(on_edit, runtime))
    app.action(render.REJECT)(_acking(on_reject, runtime))
    submit_edit = submit_or_refuse(runtime, work, SAVE_EDIT)
    submit_rejection = submit_or_refuse(runtime, work, SAVE_REJECTION)

    @app.view(render.EDIT_VIEW)
    def edit_submitted(ack: Ack, body: dict[str, Any]) -> None:
        on_edit_submitted(ack, body, submit_edit)

    @app.view(render.REJECT_VIEW)
    def reject_submitted(ack: Ack, body: dict[str, Any]) -> None:
        on_reject_submitted(ack, body, submit_rejection)
