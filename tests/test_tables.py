"""The explicit tables (handlers/tables.py): every /crisis subcommand, every queued interaction and
every job kind is listed once, and nothing a listener or the queue names is missing from them."""

from __future__ import annotations

import pytest
from slack_bolt import App

from bot.background.runtime import Runtime
from bot.crisis.commands import ANYWHERE, COMMANDS
from bot.listening.escalations import ESCALATE_JOB
from handlers import tables
from handlers.commands import CRISIS_JOB
from handlers.queued import INTERACTION_JOB, Queued


def test_every_subcommand_is_in_the_command_table_and_every_command_has_one() -> None:
    # bot/crisis/commands.py COMMANDS is PRODUCT.md's table of what is built (help and usage are drawn from it).
    assert list(tables.SUBCOMMANDS) == [name for name, _, _ in COMMANDS]
    assert all(name == spec.name for name, spec in tables.SUBCOMMANDS.items())


def test_where_each_subcommand_runs_is_what_the_product_says() -> None:
    anywhere = {name for name, spec in tables.SUBCOMMANDS.items() if not spec.needs_incident}
    assert anywhere == ANYWHERE - {"help"}
    # "This incident is resolved … `status`, `decide` and `export` still work here."
    assert {name for name, spec in tables.SUBCOMMANDS.items() if spec.when_resolved} == {"status", "decide", "export"}
    # Only reads answer in the ack: `status` without text, and `roles`.
    status, roles = tables.SUBCOMMANDS["status"].answers_in_ack, tables.SUBCOMMANDS["roles"].answers_in_ack
    assert status is not None and status("") and not status("Ads paused")
    assert roles is not None and roles("")
    assert {name for name, spec in tables.SUBCOMMANDS.items() if spec.answers_in_ack} == {"status", "roles", "tasks"}
    assert {name for name, spec in tables.SUBCOMMANDS.items() if spec.inline_when} == {"open"}


class _Seen(dict[str, Queued]):
    """The work table, noting every name a listener looks up when the app is built."""

    def __init__(self, work: dict[str, Queued]) -> None:
        super().__init__(work)
        self.looked_up: set[str] = set()

    def __getitem__(self, name: str) -> Queued:
        self.looked_up.add(name)
        return super().__getitem__(name)


def test_every_queued_work_a_listener_names_is_in_the_work_table_and_none_is_unused(runtime: Runtime) -> None:
    work = _Seen(dict(tables.WORK))
    app = App(client=runtime.slack, signing_secret="secret", token_verification_enabled=False)
    # enqueue_listener and submit_or_refuse look their name up when the app is built: a missing one
    # is a KeyError here, not a click that fails in production.
    tables.register(app, runtime, work=work)
    assert work.looked_up == set(tables.WORK)


def test_the_job_table_runs_every_kind_the_listeners_queue() -> None:
    # Listeners queue crisis and interaction jobs; ingest queues escalate jobs.
    assert set(tables.JOBS) == {CRISIS_JOB, INTERACTION_JOB, ESCALATE_JOB}


def test_an_unknown_job_kind_is_refused(runtime: Runtime) -> None:
    with pytest.raises(LookupError, match="no-such-kind"):
        tables.run_job(runtime, "no-such-kind", {})
