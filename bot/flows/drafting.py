"""A reply draft from request to message: record the request (once), show a placeholder, write the draft
(LLM, template, or a stakeholder update), and make the message show what the database holds.

Every Slack call goes through the `SlackPort`; a refusal Slack may take back later (rate limit, outage)
raises SlackFailure to the queue's failure policy, which runs the job again: the request is kept and a
re-run resumes it (`start_attempt` claims a `requested` draft once).
"""

from __future__ import annotations

import logging
import time

from bot.background.runtime import Runtime
from bot.drafting import drafts
from bot.drafting.drafts import DraftView, Platform
from bot.drafting.llm import DraftFailed, draft_reply, runtime_llm_client
from bot.drafting.prompts import PromptError, build_messages
from bot.flows.draft_messages import AlreadyDrafting, DraftPlaceholder, DraftShown
from bot.flows.port import SlackFailure, SlackPort
from bot.flows.updates import write_update
from bot.publishing.publish import publish_panel
from models import transaction
from models.drafts import REQUESTED

log = logging.getLogger(__name__)
MESSAGE_SYNC_ROUNDS = 3
# How long a repeated request waits for the first one's message to exist, to link to it.
PLACEHOLDER_WAIT_SECONDS = 2.0


def start_draft(runtime: Runtime, port: SlackPort, *, incident_id: int, platform: Platform, request: str,
                user_id: str, channel_id: str, mention_id: int | None = None,
                reply_to_url: str | None = None) -> int:
    """Record the request, show a "drafting…" placeholder, then draft (LLM or template); returns the id.

    A repeat of the same request within 30 s (double click, command sent twice) makes no second draft:
    the requester is told (`port.tell`) where the draft already under way is.
    """
    asked = drafts.request_draft_once(
        runtime.sessions, incident_id=incident_id, platform=platform, request=request, requested_by=user_id,
        channel_id=channel_id, mention_id=mention_id, reply_to_url=reply_to_url,
    )
    if asked.duplicate:
        port.tell(AlreadyDrafting(asked.draft, _draft_link(runtime, port, asked.draft.id)))
        return asked.draft.id
    if asked.draft.status == REQUESTED and not asked.draft.slack_ts:
        post_placeholder(runtime, port, asked.draft)
    if run_draft(runtime, port, asked.draft.id) is None:
        show_draft(runtime, port, asked.draft.id)  # a re-run whose draft was already made: show it
    return asked.draft.id


def _draft_link(runtime: Runtime, port: SlackPort, draft_id: int) -> str | None:
    """A permalink to the draft's message; waits briefly when the first request is still posting it."""
    deadline = time.monotonic() + PLACEHOLDER_WAIT_SECONDS
    while True:
        with transaction(runtime.sessions) as session:
            view = drafts.get_draft(session, draft_id)
        if view is not None and view.channel_id and view.slack_ts:
            try:
                return port.permalink(view.channel_id, view.slack_ts)
            except SlackFailure:
                log.warning("no permalink for draft %s's message", draft_id, exc_info=True)
                return None
        if view is None or time.monotonic() >= deadline:
            return None
        time.sleep(0.05)


def post_placeholder(runtime: Runtime, port: SlackPort, draft: DraftView) -> None:
    """The "drafting…" message; when Slack refuses it the request is kept and the draft is posted as a new
    message once written (`show_draft`)."""
    try:
        # No channel is refused by Slack like a wrong one.
        ts = port.post(draft.channel_id or "", DraftPlaceholder(draft))
    except SlackFailure:
        log.exception("could not post the drafting placeholder for draft %s", draft.id)
        return
    with transaction(runtime.sessions) as session:
        drafts.set_draft_message(session, draft.id, draft.channel_id or "", ts)


def run_draft(runtime: Runtime, port: SlackPort, draft_id: int) -> DraftView | None:
    """One drafting attempt of a `requested` draft; the message ends as the draft, or an error + *Retry*."""
    plan, settings = runtime.plan, runtime.settings
    with transaction(runtime.sessions) as session:
        job = drafts.start_attempt(session, draft_id, plan)
    if job is None:
        return None
    try:
        if job.draft.is_update:
            result = write_update(runtime, draft_id)
        elif settings.llm_configured:
            system, user = build_messages(job.prompt)
            result = draft_reply(runtime_llm_client(runtime), settings.warroom_llm_model, system, user)
        else:
            prompt = job.prompt
            result = drafts.template_reply(job.holding_statement, prompt.facts, prompt.sign_off, prompt.limit)
        failure = None
    except DraftFailed as exc:
        failure = exc.reason
    except PromptError as exc:
        failure = f"the prompt templates need fixing: {exc}"
    with transaction(runtime.sessions) as session:
        if failure is None:
            drafts.record_draft_result(session, draft_id, result, tuple(plan.tone.avoid), tuple(plan.tone.never_say))
        else:
            drafts.record_draft_failure(session, draft_id, failure)
    return show_draft(runtime, port, draft_id)


def show_draft(runtime: Runtime, port: SlackPort, draft_id: int) -> DraftView | None:
    """Make the draft's message show what the database holds.

    Two clicks can race (an edit and an approval); each renders what it read, so the slower update could
    show a stale state. Re-reading after updating, until nothing changed, makes the last word right.
    """
    shown: tuple[object, ...] | None = None
    view: DraftView | None = None
    for _ in range(MESSAGE_SYNC_ROUNDS):
        with transaction(runtime.sessions) as session:
            view = drafts.get_draft(session, draft_id)
            panel = publish_panel(session, runtime.plan.publishing, view) if view is not None else None
        if view is None:
            return None
        state = (view.status, view.revision, view.text, view.attempts, view.decided_by, tuple(view.edited_by), panel)
        if state == shown:
            break
        if view.slack_ts and view.channel_id:
            port.update(view.channel_id, view.slack_ts, DraftShown(view, panel))
        elif view.channel_id:
            ts = port.post(view.channel_id, DraftShown(view, panel))
            with transaction(runtime.sessions) as session:
                drafts.set_draft_message(session, draft_id, view.channel_id, ts)
        shown = state
    return view
