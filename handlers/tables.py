"""Every `/crisis` subcommand, every queued interaction, every module's listeners and every job kind,
listed here and nowhere else. Feature modules define plain functions and never import this module;
the functions that dispatch (the /crisis listener and its job runner, `enqueue_listener`,
`submit_or_refuse`, `run_interaction`) get these tables as arguments.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from slack_bolt import App

from bot.background.runtime import Runtime
from bot.listening.escalations import ESCALATE_JOB
from handlers import (
    catchup,
    commands,
    corrections,
    digests,
    drafts,
    drill,
    escalations,
    exports,
    home,
    incidents,
    narratives,
    publishing,
    roles,
    room,
    tasks,
    updates,
)
from handlers.commands import CRISIS_JOB, Subcommand, SubcommandTable, run_subcommand, tell_crisis_failed
from handlers.queued import INTERACTION_JOB, Queued, WorkTable, run_interaction, tell_interaction_failed

# /crisis <name> → its handler and where it may run. The order of PRODUCT.md's command table.
SUBCOMMANDS: SubcommandTable = {spec.name: spec for spec in (
    Subcommand("open", incidents.open_command, needs_incident=False, inline_when=incidents.opens_the_form),
    Subcommand("assign", roles.assign_command),
    Subcommand("roles", roles.roles_command, answers_in_ack=lambda args: True),
    Subcommand("severity", incidents.severity_command),
    Subcommand("status", incidents.status_command, when_resolved=True, answers_in_ack=lambda args: not args.strip()),
    Subcommand("fact", room.fact_command),
    Subcommand("message", room.message_command),
    Subcommand("rumor", room.rumor_command),
    Subcommand("draft", drafts.draft_command),
    Subcommand("decide", room.decide_command, when_resolved=True),
    Subcommand("digest", digests.digest_command),
    Subcommand("export", exports.export, when_resolved=True),
    Subcommand("resolve", incidents.resolve_command),
    Subcommand("catchup", catchup.catchup_command),
    Subcommand("update", updates.update_command),
    Subcommand("narratives", narratives.narratives_command),
    Subcommand("task", tasks.task_command),
    Subcommand("tasks", tasks.tasks_command, answers_in_ack=lambda args: True),
    Subcommand("followup", tasks.followup_command),
    Subcommand("drill", drill.drill_command, needs_incident=False),
)}

# Queued interaction name → the work a worker runs, and its name for the user.
WORK: WorkTable = {
    incidents.OPEN_FROM_FORM: Queued(incidents.open_from_form, "opening the incident"),
    roles.CLAIM: Queued(roles.handle_claim, "claiming the role"),
    room.RUMOUR_OUTCOME: Queued(room.handle_rumour_outcome, "recording the rumour's outcome"),
    room.ADD_TO_TIMELINE: Queued(room.handle_add_to_timeline, "adding the message to the timeline"),
    drafts.REPLY: Queued(drafts.queued_work(drafts.on_draft_reply), "drafting a reply"),
    drafts.APPROVE: Queued(drafts.queued_work(drafts.on_approve), "approving the draft"),
    drafts.REGENERATE: Queued(drafts.queued_work(drafts.on_regenerate), "regenerating the draft"),
    drafts.RETRY: Queued(drafts.queued_work(drafts.on_retry), "retrying the draft"),
    drafts.SAVE_EDIT: Queued(drafts.queued_work(drafts.save_edit), "saving the edit"),
    drafts.SAVE_REJECTION: Queued(drafts.queued_work(drafts.save_rejection), "rejecting the draft"),
    catchup.ON_JOIN: Queued(catchup.catch_up_on_join, "catching up a late joiner"),
    publishing.PUBLISH: Queued(drafts.queued_work(publishing.on_publish), "publishing the draft"),
    updates.START: Queued(drafts.queued_work(updates.on_start_update), "drafting a stakeholder update"),
    updates.POST: Queued(drafts.queued_work(updates.on_post_update), "posting the stakeholder update"),
    tasks.TASK_BUTTON: Queued(tasks.handle_task_button, "updating the task"),
    tasks.HANDOVER: Queued(tasks.handle_handover, "handing over the task"),
    tasks.FOLLOWUP_FROM: Queued(tasks.handle_followup_from, "recording the follow-up"),
    corrections.CORRECT: Queued(corrections.handle_correction, "correcting the sentiment"),
}


def register(app: App, runtime: Runtime, *, work: WorkTable = WORK) -> None:
    """Attach every module's listeners to `app` (a test passes its own `work` to see which names they use)."""
    commands.register(app, runtime, SUBCOMMANDS)
    catchup.register(app, runtime, work)
    corrections.register(app, runtime, work)
    drafts.register(app, runtime, work)
    home.register(app, runtime)
    incidents.register(app, runtime, work)
    publishing.register(app, runtime, work)
    roles.register(app, runtime, work)
    room.register(app, runtime, work)
    updates.register(app, runtime, work)
    tasks.register(app, runtime, work)


class Job(NamedTuple):
    """How a worker runs a job kind, and how it tells the requester when the job failed for good."""

    run: Callable[[Runtime, dict[str, Any]], None]
    tell_failure: Callable[[Runtime, dict[str, Any], str], None]


JOBS: dict[str, Job] = {
    CRISIS_JOB: Job(
        run=lambda runtime, payload: run_subcommand(runtime, SUBCOMMANDS, payload),
        tell_failure=tell_crisis_failed,
    ),
    INTERACTION_JOB: Job(
        run=lambda runtime, payload: run_interaction(runtime, WORK, payload),
        tell_failure=lambda runtime, payload, reason: tell_interaction_failed(runtime, WORK, payload, reason),
    ),
    ESCALATE_JOB: Job(run=escalations.run_escalation_job, tell_failure=escalations.tell_escalation_failed),
}


def run_job(runtime: Runtime, kind: str, payload: dict[str, Any]) -> None:
    """Run a queued job with its kind's runner (the worker calls this)."""
    job = JOBS.get(kind)
    if job is None:
        raise LookupError(f"no handler runs jobs of kind {kind!r}")
    job.run(runtime, payload)


def tell_job_failed(runtime: Runtime, kind: str, payload: dict[str, Any], reason: str) -> None:
    """Tell the requester of a job that failed for good (the worker's failure policy calls this)."""
    job = JOBS.get(kind)
    if job is not None:
        job.tell_failure(runtime, payload, reason)
