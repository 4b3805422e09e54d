"""The `/crisis` slash command: parse, ack at once, dispatch to the capability that owns the subcommand.

Which handler owns which subcommand is the subcommand table in `handlers/tables.py`; the listener and
its job runner get it as an argument.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from bot.background.runtime import Runtime
from bot.crisis.commands import form_of, parse_command, usage_text
from bot.crisis.incidents import find_incident_by_channel, open_incident_channels
from bot.infra.errors import describe
from bot.infra.logs import about_incident
from bot.infra.mrkdwn import escape_mrkdwn
from handlers.queued import NOT_ACCEPTED, job_body
from handlers.render.common import error_blocks, usage_blocks
from handlers.slack_gateway import SlackGateway, respond_teller
from models import reading
from models.incidents import RESOLVED

log = logging.getLogger(__name__)


@dataclass
class CommandRequest:
    """What a subcommand handler gets: who, where, the arguments, and how to answer."""

    runtime: Runtime
    client: WebClient
    respond: Respond
    user_id: str
    channel_id: str
    args: str
    trigger_id: str
    payload: dict[str, Any]
    incident_id: int | None
    incident_status: str | None

    def reply(self, problem: str, *, form: str | None = None) -> None:
        """An ephemeral answer to the person who typed the command."""
        self.respond(response_type="ephemeral", text=problem, blocks=error_blocks(problem, form))

    def gateway(self) -> SlackGateway:
        """The gateway for the command's work: what the flow has to tell answers the person who typed it."""
        return SlackGateway(self.runtime, self.client, respond_teller(self.respond))


@dataclass(frozen=True)
class Subcommand:
    """A `/crisis <name>` handler. It runs after the ack (in a worker, from the job queue) with the
    channel's incident resolved."""

    name: str
    handler: Callable[[CommandRequest], None]
    needs_incident: bool = True
    when_resolved: bool = False
    # When true for the arguments, the subcommand runs in the listener instead of the queue.
    inline_when: Callable[[str, Runtime], bool] | None = None
    # When true for the arguments, the subcommand only reads, and its answer is the ack itself: a
    # flood of `/crisis status` never queues work in front of an open or an approval.
    answers_in_ack: Callable[[str], bool] | None = None


SubcommandTable = Mapping[str, Subcommand]


def _where_to_run(runtime: Runtime, name: str, user_id: str) -> str:
    with reading(runtime.sessions) as session:
        channels = open_incident_channels(session, runtime.plan, user_id, limit=5)
    if not channels:
        return (f"`/crisis {name}` works in an incident channel, and no incident is open. "
                "Start one with `/crisis open <title>`.")
    links = ", ".join(f"<#{channel_id}>" for channel_id in channels)
    return f"`/crisis {name}` works in an incident channel. Run it in one of: {links}."


CRISIS_JOB = "crisis"


def handle_crisis(
    ack: Ack, command: dict[str, Any], respond: Respond, client: WebClient, runtime: Runtime,
    subcommands: SubcommandTable,
) -> None:
    """The /crisis listener: answer help at once; queue everything else durably, then ack."""
    parsed = parse_command(command.get("text", ""))
    if parsed.name in ("", "help"):
        ack(response_type="ephemeral", text=usage_text(), blocks=usage_blocks())
        return
    spec = subcommands.get(parsed.name)
    if spec is None:
        problem = f"`{escape_mrkdwn(parsed.name[:40])}` is not a /crisis command."
        ack(response_type="ephemeral", text=problem + "\n" + usage_text(), blocks=usage_blocks(problem))
        return
    if spec.answers_in_ack is not None and spec.answers_in_ack(parsed.args):
        _answer_in_ack(ack, command, respond, client, runtime, subcommands)
        return
    if spec.inline_when is not None and spec.inline_when(parsed.args, runtime):
        # It opens a modal: Slack's trigger_id is good for 3 seconds, too short to queue.
        ack()
        try:
            run_subcommand(runtime, subcommands, command, respond, client)
        except Exception as exc:
            log.exception("/crisis %s failed", spec.name)
            tell_crisis_failed(runtime, command, describe(exc))
        return
    # The job row is committed before the ack, so what Slack was told we accepted survives a crash;
    # if the database cannot take it quickly, the ack says so instead of promising anything.
    if runtime.intake.accept(CRISIS_JOB, job_body(command)):
        ack()
        return
    ack(response_type="ephemeral", text=NOT_ACCEPTED.format(what=f"`/crisis {spec.name}`", done="run"))


def _answer_in_ack(ack: Ack, command: dict[str, Any], respond: Respond, client: WebClient, runtime: Runtime,
                   subcommands: SubcommandTable) -> None:
    """Run a read-only subcommand in the listener and make its (first) answer the ack itself."""
    name = parse_command(command.get("text", "")).name
    acked = False

    def answer(**message: Any) -> None:
        nonlocal acked
        message.pop("replace_original", None)
        if acked:
            respond(**message)
            return
        acked = True
        ack(**message)

    try:
        run_subcommand(runtime, subcommands, command, answer, client)  # type: ignore[arg-type]
    except Exception as exc:
        log.exception("/crisis %s failed", name)
        if not acked:
            problem = f"`/crisis {name}` failed: {escape_mrkdwn(describe(exc))}. Try again."
            acked = True
            ack(response_type="ephemeral", text=problem, blocks=error_blocks(problem, form_of(name)))
    if not acked:
        ack()


def tell_crisis_failed(runtime: Runtime, command: dict[str, Any], reason: str) -> None:
    """Tell the person who typed a /crisis command that it failed for good."""
    name = parse_command(command.get("text", "")).name
    problem = f"`/crisis {escape_mrkdwn(name[:40])}` failed: {escape_mrkdwn(reason)}. Nothing was lost; try again."
    Respond(response_url=command.get("response_url"))(
        response_type="ephemeral", text=problem, blocks=error_blocks(problem, form_of(name)))


def run_subcommand(
    runtime: Runtime, subcommands: SubcommandTable, command: dict[str, Any], respond: Respond | None = None,
    client: WebClient | None = None,
) -> None:
    """Find the channel's incident, check the subcommand may run there, and run it. The worker calls this
    for a queued /crisis job (answers go to the command's response_url, Slack calls to the runtime's
    client; a failure is raised to the worker, whose failure policy retries or tells the person); the
    listener calls it for the subcommands it answers itself."""
    parsed = parse_command(command.get("text", ""))
    spec = subcommands[parsed.name]
    respond = respond or Respond(response_url=command.get("response_url"))
    client = client or runtime.slack
    channel_id = command.get("channel_id", "")
    with reading(runtime.sessions) as session:
        incident = find_incident_by_channel(session, channel_id)
        incident_id = incident.id if incident else None
        incident_status = incident.status if incident else None
    if spec.needs_incident and incident_id is None:
        respond(response_type="ephemeral", text=_where_to_run(runtime, spec.name, command.get("user_id", "")))
        return
    if spec.needs_incident and incident_status == RESOLVED and not spec.when_resolved:
        respond(
            response_type="ephemeral",
            text=f"This incident is resolved, so `/crisis {spec.name}` no longer applies. "
            "`status`, `decide` and `export` still work here.",
        )
        return
    with about_incident(incident_id):  # its log lines name the incident
        spec.handler(
            CommandRequest(
                runtime=runtime,
                client=client,
                respond=respond,
                user_id=command.get("user_id", ""),
                channel_id=channel_id,
                args=parsed.args,
                trigger_id=command.get("trigger_id", ""),
                payload=command,
                incident_id=incident_id,
                incident_status=incident_status,
            )
        )


def register(app: App, runtime: Runtime, subcommands: SubcommandTable) -> None:
    @app.command("/crisis")
    def crisis(ack: Ack, command: dict[str, Any], respond: Respond, client: WebClient) -> None:
        handle_crisis(ack, command, respond, client, runtime, subcommands)
