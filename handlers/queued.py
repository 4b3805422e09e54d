"""Interactions whose work runs on the job queue: committed before the ack, run by a worker.

A click or a modal submission is acknowledged only once its job row is committed, exactly like a
`/crisis` command (`handlers/commands.py`), so what Slack was told we accepted survives a crash and
the web process spends its time acking, not calling Slack and the LLM. Listeners that must open a
modal stay inline: Slack's `trigger_id` expires after 3 seconds, too soon for a queue.

Which work runs under which name is the work table in `handlers/tables.py`; the functions here get
it as an argument.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from slack_bolt import Ack, Respond
from slack_sdk import WebClient

from bot.background.runtime import Runtime
from bot.infra.mrkdwn import escape_mrkdwn

log = logging.getLogger(__name__)

INTERACTION_JOB = "interaction"
# What the ack says when the job could not be committed in time (a command "was not run", a click or
# a form "was not done").
NOT_ACCEPTED = ("War Room's database is busy or unreachable right now, so {what} was not {done}. "
                "Nothing was changed; try again in a minute.")

Work = Callable[[Runtime, dict[str, Any], WebClient, Respond], None]


class Queued(NamedTuple):
    """One entry of the work table: what runs, and its name for the user ("approving the draft")."""

    work: Work
    what: str


WorkTable = Mapping[str, Queued]


def job_body(body: dict[str, Any]) -> dict[str, Any]:
    """A Slack payload as it is queued: everything but the (deprecated) verification token."""
    return {key: value for key, value in body.items() if key != "token"}


def enqueue_listener(runtime: Runtime, work: WorkTable, name: str) -> Callable[[Ack, dict[str, Any], Respond], None]:
    """A Bolt action or shortcut listener: queue `name`'s work, then ack; or ack and say it was not done.
    `name` is looked up now, so a listener for work the table lacks fails when the app is built."""
    what = work[name].what

    def listener(ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        accepted = runtime.intake.accept(INTERACTION_JOB, {"work": name, "body": job_body(body)})
        ack()
        if not accepted and body.get("response_url"):
            respond(response_type="ephemeral", replace_original=False, text=NOT_ACCEPTED.format(what=what, done="done"))

    return listener


Submit = Callable[[Ack, dict[str, Any], str], None]


def submit_or_refuse(runtime: Runtime, work: WorkTable, name: str) -> Submit:
    """For a modal listener: `submit(ack, body, input_id)` queues `name`'s work for a valid submission
    and closes the modal, or keeps the modal open with the reason under `input_id` (nothing is lost:
    what they typed is still in the form). `name` is looked up now, like `enqueue_listener`."""
    what = work[name].what

    def submit(ack: Ack, body: dict[str, Any], input_id: str) -> None:
        if runtime.intake.accept(INTERACTION_JOB, {"work": name, "body": job_body(body)}):
            ack()
            return
        ack(response_action="errors", errors={input_id: NOT_ACCEPTED.format(what=what, done="done")})

    return submit


def run_interaction(runtime: Runtime, work: WorkTable, payload: dict[str, Any]) -> None:
    """A queued interaction, run by a worker. A failure is raised to the worker, whose failure policy
    retries what is transient and tells the clicker the rest (`tell_interaction_failed`)."""
    body = payload["body"]
    work[payload["work"]].work(runtime, body, runtime.slack, Respond(response_url=body.get("response_url")))


def tell_interaction_failed(runtime: Runtime, work: WorkTable, payload: dict[str, Any], reason: str) -> None:
    """Tell the person who clicked or saved a form that its work failed for good."""
    registered = work.get(payload.get("work", ""))
    body = payload.get("body", {})
    if registered is None or not body.get("response_url"):
        log.error("a queued interaction failed and nobody can be told: %s", reason)
        return
    problem = f"{registered.what.capitalize()} failed ({escape_mrkdwn(reason)}). Try again."
    Respond(response_url=body["response_url"])(response_type="ephemeral", replace_original=False, text=problem)

