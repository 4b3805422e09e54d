"""`warroom demo`: a whole crisis, offline — no Slack workspace, no LLM key, no environment variables.

The demo is a drill (`bot.demo.drill`) of a bundled stream: about five hours of invented posts about
the plan's fictional brand (`data/checkin-outage.jsonl`), two calm hours and then a complaint wave
about a check-in outage, replayed at high speed on the drill's simulated clock. The real app runs
against the in-process Slack emulator; the posts arrive through `POST /mentions`, the spike alert and
the digests fire when they would have, and a scripted team answers them with signed slash commands,
button clicks and modal submissions at realistic moments. The transcript shows what the channels
show, with simulated times; the four exports (written to the output folder) show the crisis's real
shape: minutes to the first statement, hours to resolve, mentions per hour.
"""

from __future__ import annotations

import html
import logging
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from bot.crisis.plan import BUNDLED_PLAN, Plan, load_plan
from bot.demo.drill import BUNDLED_STREAMS, DrillRun, DrillSetup, exit_code, run_offline
from bot.demo.signed_slack import find_button
from bot.demo.slack_emulator import SlackEmulator
from bot.demo.stream import load_stream
from bot.demo.team import APPROVER, DRAFTER, LEAD, LIAISON, MONITOR, PEOPLE, Team
from bot.infra.clock import now as clock_now
from handlers.render.drill import DRILL_NOTE

__all__ = ["find_button", "plain", "render_message", "run_demo"]

STREAM_FILE = BUNDLED_STREAMS / "checkin-outage.jsonl"
# 5 h 24 min of stream in about 6.5 s of clock time: the whole demo stays well under a minute.
DEMO_SPEED = 3000.0
_TOKEN = re.compile(r"<([^<>]+)>")
_EMOJI = re.compile(r":([a-z0-9_+-]+):")
EMOJI = {
    "memo": "📝",
    "white_check_mark": "✅",
    "rotating_light": "🚨",
    "speech_balloon": "💬",
    "scales": "⚖️",
    "mega": "📣",
    "recycle": "♻️",
    "page_facing_up": "📄",
    "large_yellow_circle": "🟡",
    "large_orange_circle": "🟠",
    "red_circle": "🔴",
    "large_blue_circle": "🔵",
    "warning": "⚠️",
    "x": "❌",
    "bust_in_silhouette": "👤",
    "speaking_head_in_silhouette": "🗣️",
    "chart_with_upwards_trend": "📈",
    "bar_chart": "📊",
    "pushpin": "📌",
    "no_entry_sign": "🚫",
    "hourglass_flowing_sand": "⏳",
    "arrows_counterclockwise": "🔄",
    "test_tube": "🧪",
}


# ---- what the channel shows, as terminal text ---------------------------------------------------


def plain(text: str, names: dict[str, str], channels: dict[str, str]) -> str:
    """Slack mrkdwn as terminal text: people and channels by name, links as their label."""

    def token(match: re.Match[str]) -> str:
        inner = match.group(1)
        target, _, label = inner.partition("|")
        if target.startswith("@"):
            return "@" + names.get(target[1:], label or target[1:])
        if target.startswith("#"):
            return "#" + (channels.get(target[1:]) or label or target[1:])
        if target.startswith("!"):
            return label or "@" + target[1:].split("^")[0]
        return label or target

    shown = html.unescape(_TOKEN.sub(token, text))
    return _EMOJI.sub(lambda match: EMOJI.get(match.group(1), match.group(0)), shown)


def render_message(message: dict[str, Any], names: dict[str, str], channels: dict[str, str]) -> list[str]:
    """A message's blocks (or text) as lines; buttons as [Label]."""
    show: Callable[[str], str] = lambda text: plain(text, names, channels)  # noqa: E731
    lines: list[str] = []
    for block in message.get("blocks") or []:
        kind = block.get("type")
        if kind in ("section", "header"):
            if block.get("text"):
                lines += show(block["text"]["text"]).splitlines()
            lines += [show(f["text"]) for f in block.get("fields") or []]
            accessory = block.get("accessory") or {}
            if accessory.get("type") == "button":
                lines.append(f"[{accessory['text']['text']}]")
        elif kind == "context":
            lines.append(
                "  " + " · ".join(show(e.get("text", e.get("alt_text", ""))) for e in block["elements"])
            )
        elif kind == "actions":
            lines.append(" ".join(f"[{e['text']['text']}]" for e in block["elements"] if e.get("text")))
        elif kind == "image":
            lines.append(f"[image: {block.get('alt_text', '')}]")
        elif kind == "divider":
            lines.append("────")
    if not lines:
        lines = show(message.get("text", "")).splitlines()
    lines += [f"📎 {f.get('name')}" for f in message.get("files") or []]
    return lines


@dataclass
class Transcript:
    """Prints what is new in the channels and in people's ephemeral messages since the last look, each
    message at the simulated time it was first seen (the drill's clock stands still while the app works)."""

    emulator: SlackEmulator
    plan: Plan
    out: TextIO
    quiet: bool
    names: dict[str, str] = field(default_factory=dict)
    shown: dict[str, str] = field(default_factory=dict)
    ephemerals_seen: int = 0
    calls_seen: int = -1

    def say(self, line: str = "") -> None:
        if not self.quiet:
            print(line, file=self.out, flush=True)

    def flush(self) -> None:
        """Show new or changed messages (bot posts, in time order) and new ephemerals."""
        if self.calls_seen == len(self.emulator.calls):
            return  # no Slack call since the last look: nothing can have changed
        self.calls_seen = len(self.emulator.calls)
        channels = {cid: c.name for cid, c in self.emulator.channels.items()}
        marker = plain(DRILL_NOTE, self.names, channels)
        at = clock_now().astimezone(self.plan.zone).strftime("%H:%M")
        for channel_id, channel in list(self.emulator.channels.items()):
            if channel.is_im:
                continue
            for message in self.emulator.messages(channel_id):
                key = f"{channel_id}:{message['ts']}"
                lines = render_message(message, self.names, channels)
                # The DRILL mark is shown once, in the message's header line.
                drill = f"  {marker}" in lines or str(message.get("text", "")).startswith("DRILL")
                lines = [line.removeprefix("DRILL · ") for line in lines if line not in (f"  {marker}", "DRILL")]
                rendered = "\n".join(lines)
                if self.shown.get(key) == rendered:
                    continue
                previous = self.shown.get(key)
                self.shown[key] = rendered
                if previous is not None:  # an update: show only what changed
                    old = set(previous.splitlines())
                    rendered = (
                        "\n".join(line for line in rendered.splitlines() if line not in old)
                        or "(no visible change)"
                    )
                who = self.names.get(message.get("user", ""), "War Room")
                tags = (" (updated)" if previous is not None else "") + (" [DRILL]" if drill else "")
                self.say(f"  #{channel.name} {at} {who}{tags}:")
                for line in rendered.splitlines():
                    self.say(f"      {line}")
        ephemerals = self.emulator.ephemerals()
        for ephemeral in ephemerals[self.ephemerals_seen :]:
            who = self.names.get(ephemeral.get("user") or "", "someone")
            text = "\n".join(render_message(ephemeral, self.names, channels))
            self.say(f"  (only {who} sees) " + text.replace("\n", "\n      "))
        self.ephemerals_seen = len(ephemerals)


# ---- the script ---------------------------------------------------------------------------------


class DemoTeam(Team):
    """The demo's story: the scripted team answers the spike alert, works the incident, resolves it."""

    transcript: Transcript

    def __init__(self, run: DrillRun, emulator: SlackEmulator, alert_channel_id: str) -> None:
        super().__init__(run, emulator, alert_channel_id)
        self.reported = 0  # posts already narrated

    def say(self, line: str = "") -> None:
        self.transcript.say(line)

    def show(self) -> None:
        if self.transcript.calls_seen != len(self.emulator.calls):
            self.arrivals()  # what came in before what the bot now shows
        self.transcript.flush()

    def acted(self, user_id: str, what: str) -> None:
        self.arrivals()
        super().acted(user_id, what)

    def arrivals(self) -> None:
        """Narrate the posts that came in since the last time."""
        count = self.run.delivered - self.reported
        if count > 0:
            zone = self.run.runtime.plan.zone
            since = self.run.posts[self.reported].created_at.astimezone(zone)
            self.say(f"\n~ {count} posts arrived through POST /mentions since {since:%H:%M}")
        self.reported = self.run.delivered

    def story_time(self, native: str) -> datetime:
        """A time of the story (`07:40`, as in the bundled stream) on the drill's clock."""
        stream = self.run.setup.stream
        hours, minutes = (int(part) for part in native.split(":"))
        moment = stream.start.replace(hour=hours, minute=minutes, second=0)
        return self.run.began + (moment - stream.start)

    def local(self, native: str) -> str:
        return self.story_time(native).strftime("%H:%M UTC")

    def play(self) -> None:
        run = self.run
        self.say("== Acme Air, a Friday morning. The check-in system fails; the internet notices. ==")
        if not run.run_until_alert():
            raise RuntimeError("the stream ended without a spike alert")
        run.wait(4)
        if not self.open_incident(LEAD, "sev2 outage Check-in and app outage delaying flights"):
            raise RuntimeError("the incident channel was never created; nothing else can run")
        run.wait(2)
        self.command(LEAD, f"assign liaison <@{LIAISON}>")
        run.wait(3)
        self.command(MONITOR, f"fact Check-in and the app have been down since {self.local('07:40')}; "
                              "aircraft and crews are fine")
        run.wait(1)
        self.command(MONITOR, "fact No customer data was accessed: the outage is a failed database upgrade")
        run.wait(2)
        self.command(LEAD, "message We're sorry. Flights are operating with delays; check-in desks are open.")
        run.wait(1)
        self.command(MONITOR, "digest", self.new_message())
        run.wait(2)
        self.command(MONITOR, "rumor Acme Air was hacked and passenger data leaked")
        run.wait(4)
        first = self.command(DRAFTER, "draft x Reply to @mira_on_the_move: 300 passengers at the gate, no information",
                             self.button("draft_approve"))
        if first:
            draft_id = first[1]["value"]
            run.wait(3)
            if self.click(DRAFTER, "draft_edit", "Edit", draft_id):
                self.settle(lambda e: e.opened_views)
                self.acted(DRAFTER, "edits the reply and saves it")
                self.submit("draft_edit_view", {"text": (
                    "We're so sorry for the wait. Check-in is down and our gate teams are boarding by hand; "
                    "flights are running with delays, not cancellations. Updates every 30 min here.")}, DRAFTER)
                self.settle()
            run.wait(6)
            # The edit made a new revision: the approver clicks the message as it shows now.
            if self.click(APPROVER, "draft_approve", "Approve"):
                self.settle()
        run.wait(5)
        second = self.command(
            DRAFTER, "draft x Reply to skylinedaily's thread asking whether Acme Air was hacked",
            self.button("draft_approve", exclude=first[1]["value"] if first else None),
        )
        if second:
            run.wait(2)
            if self.click(DRAFTER, "draft_regenerate", "Regenerate", second[1]["value"]):
                self.settle()
            run.wait(4)
            # Regenerating replaced the draft: the newest one carries the buttons now.
            if self.click(APPROVER, "draft_reject", "Reject"):
                self.settle(lambda e: len(e.opened_views) >= 2)
                self.acted(APPROVER, "gives a reason and rejects it")
                self.submit("draft_reject_view", {"reason": (
                    "Don't repeat the word 'hacked', even to deny it. Lead with the confirmed fact instead.")},
                    APPROVER)
                self.settle()
        run.wait(10)
        if self.click(LEAD, "rumour_refuted", "Refuted"):
            self.settle()
        run.wait(5)
        self.command(LEAD, "decide Offer free same-day rebooking to every delayed passenger")
        run.run_until(self.story_time("09:50"))
        self.command(LEAD, "severity sev3")
        run.run_until(self.story_time("10:10"))
        self.command(LEAD, f"status Check-in restored at {self.local('10:05')}; queues clearing, delays shrinking")
        run.run_until(self.story_time("10:20"))
        self.command(LEAD, "resolve Check-in restored, no data accessed, rebooking offered to all")
        run.run_to_end()
        self.command(LEAD, "export html", lambda e: any(f.get("name", "").endswith(".html") for f in e.files))


# ---- running it ---------------------------------------------------------------------------------


def run_demo(out_dir: Path, quiet: bool) -> int:
    """Run the scripted crisis and write its exports; 0 when every step ran, else 1."""
    started = time.monotonic()
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.WARNING)  # the app's INFO logs would drown the transcript
    plan = load_plan(BUNDLED_PLAN)
    out = sys.stdout
    names = {user_id: real_name for user_id, (_, real_name) in PEOPLE.items()}
    setup = DrillSetup(load_stream(STREAM_FILE), speed=DEMO_SPEED, playbook="outage",
                       title="Check-in and app outage delaying flights")
    try:
        with SlackEmulator() as emulator:
            names[emulator.bot_user_id] = "War Room"
            transcript = Transcript(emulator, plan, out, quiet, names=names)

            def team(run: DrillRun, slack: SlackEmulator, alert_channel_id: str) -> Team:
                players = DemoTeam(run, slack, alert_channel_id)
                players.transcript = transcript
                return players

            result = run_offline(setup, plan, out_dir, team=team, emulator=emulator)
    finally:
        root.setLevel(level)
    if not result.exports:
        print("warroom demo: no incident was opened, so there is nothing to export", file=sys.stderr)
        return 1
    elapsed = time.monotonic() - started
    transcript.say("")
    transcript.say(result.scorecard.text())
    transcript.say("")
    for path in result.exports:
        print(f"wrote {path}", file=out)
    if not quiet:
        print(f"demo finished in {elapsed:.1f} s", file=out)
    return exit_code(result, "warroom demo")
