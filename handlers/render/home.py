"""Block Kit for the App Home: open incidents, recently resolved ones, and the *Open incident* button."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from slack_sdk.models.blocks import ActionsBlock, Block, DividerBlock, HeaderBlock
from slack_sdk.models.views import View

from bot.crisis.incidents import IncidentLine
from bot.tasks.tasks import TaskView
from handlers.render.incident import (
    context,
    format_duration,
    open_button,
    plain,
    section,
    severity_text,
    slack_date,
    team_text,
)
from models.incidents import OPENING

MAX_OPEN_SHOWN = 40  # a Home tab holds 100 blocks
MAX_TASKS_SHOWN = 15  # one section: its 3,000 characters


def _channel(line: IncidentLine) -> str:
    return f"<#{line.channel_id}>" if line.channel_id else "_no channel yet_"


def _open_line(line: IncidentLine, now: datetime) -> str:
    lead = f"<@{line.lead}>" if line.lead else "_no lead_"
    state = " · :hourglass: still opening" if line.status == OPENING else ""
    return (
        f"*{team_text(line.title, 300)}*\n"
        f"{severity_text(line.severity, line.severity_label)} · {_channel(line)} · "
        f"open {format_duration(now - line.opened_at)} · lead {lead}{state}"
    )


def _resolved_line(line: IncidentLine) -> str:
    end = line.resolved_at or line.opened_at
    return (
        f"*{team_text(line.title, 300)}* · {line.severity.upper()} · {_channel(line)} · "
        f"resolved {slack_date(end)} after {format_duration(end - line.opened_at)}"
    )


def _task_line(task: TaskView, channel_id: str | None, now: datetime) -> str:
    where = f" · <#{channel_id}>" if channel_id else ""
    if task.due_at is None:
        due = "no due time"
    elif task.due_at <= now:
        due = f":warning: overdue since {slack_date(task.due_at)}"
    else:
        due = f"due {slack_date(task.due_at)}"
    return f"• {team_text(task.text, 300)}{where} · {due}"


def home_view(open_incidents: list[IncidentLine], resolved: list[IncidentLine], now: datetime,
              tasks: Sequence[tuple[TaskView, str | None]] = ()) -> View:
    """The Home tab."""
    blocks: list[Block] = [
        HeaderBlock(text=plain("War Room", 150)),
        section("Open a war room the moment a crisis starts; everything that happens in it is logged."),
        ActionsBlock(block_id="home-actions", elements=[open_button()]),
        DividerBlock(),
    ]
    if tasks:
        blocks.append(section(f"*Your open tasks* ({len(tasks)})\n"
                              + "\n".join(_task_line(task, channel, now) for task, channel in tasks[:MAX_TASKS_SHOWN])))
        blocks.append(DividerBlock())
    blocks.append(section(f"*Open incidents* ({len(open_incidents)})"))
    if not open_incidents:
        blocks.append(context("No incident is open."))
    for line in open_incidents[:MAX_OPEN_SHOWN]:
        blocks.append(section(_open_line(line, now)))
    if len(open_incidents) > MAX_OPEN_SHOWN:
        blocks.append(context(f"…and {len(open_incidents) - MAX_OPEN_SHOWN} more."))
    blocks.append(DividerBlock())
    blocks.append(section("*Recently resolved*"))
    if not resolved:
        blocks.append(context("Nothing resolved yet."))
    for line in resolved:
        blocks.append(section(_resolved_line(line)))
    return View(type="home", blocks=blocks)
