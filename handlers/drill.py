"""`/crisis drill <name>`: the plan's drill, run in a child process.

It runs `warroom drill … --offline`: the bot's clock is one per process, and a drill's simulated clock
must never become the live bot's. The child replays the stream against an offline copy of War Room
with the scripted team, then posts its scorecard and export in the channel the command came from
(handlers/drill_slack.py).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING

from slack_sdk.errors import SlackApiError

from bot.crisis.commands import form_of
from bot.crisis.plan import plan_path
from bot.demo.drill_setup import plan_drill
from bot.infra.errors import CommandError
from bot.infra.mrkdwn import escape_mrkdwn
from handlers.commands import CommandRequest
from handlers.render.common import section
from handlers.render.drill import DRILL, drill_line
from handlers.slack_gateway import post_blocks

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)


def _drill_names(names: Iterable[str]) -> str:
    return ", ".join(f"`{name}`" for name in sorted(names))


def drill_command(request: CommandRequest) -> None:
    """`/crisis drill <name>`: validate the plan's drill, start it in a child process, say so here."""
    runtime = request.runtime
    plan = runtime.plan
    name = request.args.strip().lower()
    if not plan.drills:
        request.reply("The plan defines no drills. Add one under `drills:` (its stream `file`, `speed` and "
                      "`playbook`), or run `warroom drill FILE` from the command line.", form=form_of("drill"))
        return
    if name not in plan.drills:
        given = f"`{escape_mrkdwn(name[:40])}` is not" if name else "Say which drill:"
        request.reply(f"{given} a drill in the plan: use one of {_drill_names(plan.drills)}.", form=form_of("drill"))
        return
    try:
        setup = plan_drill(plan, name, plan_path(runtime.settings.warroom_plan))
    except CommandError as exc:
        lines = str(exc).splitlines()
        shown = "\n".join(escape_mrkdwn(line) for line in lines[:6]) + ("\n…" if len(lines) > 6 else "")
        request.reply(f"Drill `{name}` cannot start; nothing was replayed:\n```{shown}```")
        return
    announcement = (f":test_tube: *{DRILL}* `{name}` started by <@{request.user_id}>: {setup.summary()}, against an "
                    "offline copy of War Room with a scripted team (no real incident, channel or account is "
                    "touched). Its scorecard and export will be posted here.")
    try:
        post_blocks(request.client, request.channel_id, drill_line(f"Drill {name} started", 200),
                    [section(announcement)])
    except SlackApiError as exc:
        request.reply(f"The drill was not started: Slack answered `{exc.response.get('error')}` when I tried to post "
                      "here (invite me to this channel, or run it from one I am in).")
        return
    start_drill_process(request, setup.command(report_to=request.channel_id))


def start_drill_process(request: CommandRequest, arguments: list[str]) -> None:
    """Run `warroom drill …` in a child process fed the plan in force on stdin; reap it when it ends."""
    runtime = request.runtime
    settings = runtime.settings
    env = dict(os.environ, SLACK_API_URL=settings.slack_api_url)
    if settings.slack_bot_token is not None:
        env["SLACK_BOT_TOKEN"] = settings.slack_bot_token.get_secret_value()
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "drill", *arguments, "--plan-from-stdin"],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env, start_new_session=True,
    )
    assert process.stdin is not None
    process.stdin.write(runtime.plan.model_dump_json().encode())
    process.stdin.close()
    threading.Thread(target=process.wait, name=f"drill-{process.pid}", daemon=True).start()
    log.info("drill started by %s in %s (process %d)", request.user_id, request.channel_id, process.pid)


