"""Stakeholder updates after the ack: writing one (LLM or template), posting an approved one to the
stakeholder channel once, and reminding the lead when one is overdue.

The story of a post: claim it (only an approved update, only once), find the channel the plan names, post
it — joining a public channel first when Slack says the bot is not in it — then record where it went on
the timeline and say so in the room. A private channel the bot was not invited to, or any other refusal,
is told in the room with a *Post update* button; the claim is released so that button can try again.
Each post carries a marker (message metadata naming the update), so a claim taken back from a worker that
died mid-post first looks for it in the channel: posted once, even across a crash.
"""

from __future__ import annotations

import logging
from datetime import datetime

from bot.background.runtime import Runtime
from bot.drafting import updates
from bot.drafting.llm import DraftResult, runtime_llm_client
from bot.flows.port import SlackFailure, SlackPort
from bot.flows.update_messages import (
    UPDATE_MARK,
    StakeholderUpdateMessage,
    UpdateNotPosted,
    UpdateOverdue,
    UpdatePosted,
)
from bot.infra.logs import about_incident
from models import transaction, utcnow

log = logging.getLogger(__name__)

# Slack's answers that mean the bot cannot see the channel: private and not invited, or no such channel.
UNSEEN = frozenset({"channel_not_found", "method_not_supported_for_channel_type"})


def write_update(runtime: Runtime, draft_id: int) -> DraftResult:
    """The text of update `draft_id`: from the LLM (DraftFailed when it fails: the draft shows *Retry*), or
    without one from the template, labelled."""
    with transaction(runtime.sessions) as session:
        context = updates.context_for_draft(session, runtime.plan, draft_id, utcnow())
    if runtime.settings.llm_configured:
        return updates.draft_update(runtime_llm_client(runtime), runtime.settings.warroom_llm_model, context)
    return updates.template_update(context)


def _post_joining(port: SlackPort, channel_id: str, message: StakeholderUpdateMessage) -> str:
    try:
        return port.post(channel_id, message)
    except SlackFailure as failure:
        if failure.code != "not_in_channel":
            raise
    port.join(channel_id)  # a public channel: the bot joins by itself
    return port.post(channel_id, message)


def post_update(runtime: Runtime, port: SlackPort, draft_id: int, now: datetime | None = None) -> str | None:
    """Post approved update `draft_id` to the plan's stakeholder channel, once; its ts, or None when it was
    not posted now (not approved, already posted or being posted, or Slack refused: the room was told)."""
    now = now or utcnow()
    reference = runtime.plan.stakeholder_channel
    with transaction(runtime.sessions) as session:
        claim = updates.claim_post(session, draft_id, reference, now)
    if claim is None:
        return None
    with about_incident(claim.incident_id):
        if reference is None:
            _not_posted(runtime, port, claim, "the plan names no `stakeholder_channel`, so it was recorded but "
                        "posted nowhere; add one to the plan, then click *Post update*", now)
            return None
        message = StakeholderUpdateMessage(runtime.plan.brand.name, claim.incident_title, claim.text,
                                           claim.approved_by, claim.draft_id)
        try:
            channel_id = port.find_channel(reference)
            # A claim taken back from a worker that died mid-post: the post may be there already.
            found = port.find_marked(channel_id, UPDATE_MARK, str(claim.draft_id)) if claim.recovering else None
            ts = found or _post_joining(port, channel_id, message)
        except SlackFailure as failure:
            private = failure.code in UNSEEN
            if private:
                reason = (f"War Room cannot see {reference}: if it is a private channel, invite the bot there "
                          f"(`/invite @War Room` in {reference}), then click *Post update*")
            else:
                reason = f"{failure} when posting to {reference}; click *Post update* to try again"
            _not_posted(runtime, port, claim, reason, now, private=private)
            return None
        with transaction(runtime.sessions) as session:
            updates.record_posted(session, claim, channel_id, ts, now)
        if claim.incident_channel:
            try:
                port.post(claim.incident_channel, UpdatePosted(claim.draft_id, channel_id, claim.approved_by))
            except SlackFailure:
                log.warning("update %d posted, but the room could not be told", claim.draft_id, exc_info=True)
        return ts


def _not_posted(runtime: Runtime, port: SlackPort, claim: updates.PostClaim, reason: str, now: datetime,
                *, private: bool = False) -> None:
    with transaction(runtime.sessions) as session:
        updates.record_post_failed(session, claim, reason, now)
    if claim.incident_channel:
        port.post(claim.incident_channel, UpdateNotPosted(claim.draft_id, claim.channel_ref, reason, private))


def remind_overdue_updates(runtime: Runtime, port: SlackPort, now: datetime) -> int:
    """Remind each open incident's lead, once per due time, that a stakeholder update is overdue; how many
    reminders were posted. One room's failure does not stop the others."""
    with transaction(runtime.sessions) as session:
        due = updates.claim_overdue_reminders(session, runtime.plan, now)
    posted = 0
    for reminder in due:
        with about_incident(reminder.incident_id):
            try:
                ts = port.post(reminder.channel_id, UpdateOverdue(reminder.leads, reminder.due_at, reminder.last_at,
                                                                  reminder.minutes))
            except SlackFailure:
                log.exception("could not post the overdue-update reminder; the next run tries again")
                with transaction(runtime.sessions) as session:
                    updates.release_reminder(session, reminder.reminder_id)
                continue
            with transaction(runtime.sessions) as session:
                updates.set_reminder_message(session, reminder.reminder_id, ts)
            posted += 1
    return posted
