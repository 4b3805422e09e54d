"""`warroom demo`: a whole crisis, offline — no Slack workspace, no LLM key, no environment variables.

The real app runs: a Runtime on a temporary SQLite database, the real Flask+Bolt app served by
waitress on a free local port, and Slack played by the in-process `SlackEmulator`. A scripted team
sends correctly signed slash commands, button clicks and modal submissions; a bundled stream of
invented posts about the plan's fictional brand (`data/mentions.jsonl`, each with `minutes`
relative to the moment the incident opens) arrives through `POST /mentions`. The transcript shows
what the channel shows; the four exports are written to the output folder.

Time is real, so the hours of the story are compressed: posts from before the incident keep their
spacing (up to three hours back), posts from during and after it arrive at the moment the script
reaches them.
"""

from __future__ import annotations

import html
import json
import logging
import re
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

import httpx
from pydantic import SecretStr

from bot.demo.signed_slack import SlackClient, find_button
from bot.demo.slack_emulator import SlackEmulator
from bot.plan import BUNDLED_PLAN, Plan, load_plan
from bot.runtime import Runtime, build_runtime
from bot.settings import DEFAULT_LLM_MODEL, Settings
from models import Base, utcnow

MENTIONS_FILE = Path(__file__).with_name("data") / "mentions.jsonl"
SIGNING_SECRET = "demo-signing-secret"  # noqa: S105 - a local, throwaway secret
BOT_TOKEN = "xoxb-demo-token"  # noqa: S105
INGEST_TOKEN = "demo-ingest-token"  # noqa: S105
STEP_TIMEOUT = 15.0
QUIET_SECONDS = 0.3

# The scripted team (invented people) and the roles the demo plan gives them.
LEAD, APPROVER, DRAFTER, MONITOR, LIAISON = "UDEMOLEAD", "UDEMOAPPR", "UDEMODRFT", "UDEMOMONI", "UDEMOLIAI"
PEOPLE = {
    LEAD: ("priya", "Priya Shah"),
    APPROVER: ("tom", "Tom Becker"),
    DRAFTER: ("ana", "Ana Ruiz"),
    MONITOR: ("sam", "Sam Okafor"),
    LIAISON: ("jo", "Jo Lindqvist"),
}
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
}


def demo_plan() -> Plan:
    """The bundled example plan with the demo team in its roles, no feeds and no alert channel."""
    plan = load_plan(BUNDLED_PLAN)
    roles = dict(plan.roles)
    for role, user in (("lead", LEAD), ("approver", APPROVER), ("drafter", DRAFTER), ("monitor", MONITOR)):
        roles[role] = roles[role].model_copy(update={"members": [user], "usergroup": None})
    feeds = plan.feeds.model_copy(update={"rss": [], "mastodon": []})
    return plan.model_copy(update={"roles": roles, "feeds": feeds, "alert_channel": None})


def demo_settings(database_url: str, api_url: str) -> Settings:
    """Every setting given explicitly, so nothing in the environment (an OpenAI key…) changes the demo."""
    return Settings(
        slack_bot_token=SecretStr(BOT_TOKEN),
        slack_signing_secret=SecretStr(SIGNING_SECRET),
        slack_app_token=None,
        slack_api_url=api_url,
        database_url=database_url,
        openai_api_key=None,
        openai_base_url=None,
        warroom_llm_model=DEFAULT_LLM_MODEL,
        warroom_plan=None,
        warroom_ingest_token=SecretStr(INGEST_TOKEN),
        port=3000,
    )


# ---- playing Slack's side -----------------------------------------------------------------------


class SignedSlack:
    """Slack's side of /slack/events for the demo: the shared signed client, and a refusal is a failure."""

    def __init__(self, app_url: str, emulator: SlackEmulator) -> None:
        self.client = SlackClient(app_url, SIGNING_SECRET, emulator=emulator)

    @staticmethod
    def _sent(response: httpx.Response) -> None:
        if response.status_code != 200:
            raise RuntimeError(f"the app answered HTTP {response.status_code}: {response.text[:200]}")

    def command(self, text: str, user_id: str, channel_id: str) -> None:
        self._sent(self.client.command(text, user_id=user_id, channel_id=channel_id, user_name=PEOPLE[user_id][0]))

    def click(self, action_id: str, user_id: str, channel_id: str, value: str | None = None) -> None:
        """Click the newest button with this action id (and value) in the channel."""
        self._sent(self.client.block_action(action_id, value, user_id=user_id, channel_id=channel_id))

    def submit(self, callback_id: str, values: dict[str, str], user_id: str) -> None:
        """Submit the modal most recently opened with this callback id, plain-text inputs filled in."""
        self._sent(self.client.view_submission(
            callback_id, {block_id: {block_id: value} for block_id, value in values.items()}, user_id=user_id))


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
    """Prints what is new in the channels and in people's ephemeral messages since the last look."""

    emulator: SlackEmulator
    plan: Plan
    out: TextIO
    quiet: bool
    names: dict[str, str] = field(default_factory=dict)
    shown: dict[str, str] = field(default_factory=dict)
    ephemerals_seen: int = 0

    def say(self, line: str = "") -> None:
        if not self.quiet:
            print(line, file=self.out, flush=True)

    def action(self, user_id: str, what: str) -> None:
        self.say(f"\n› {self.names.get(user_id, user_id)} {what}")

    def flush(self) -> None:
        """Show new or changed messages (bot posts, in time order) and new ephemerals."""
        channels = {cid: c.name for cid, c in self.emulator.channels.items()}
        for channel_id, channel in list(self.emulator.channels.items()):
            if channel.is_im:
                continue
            for message in self.emulator.messages(channel_id):
                key = f"{channel_id}:{message['ts']}"
                rendered = "\n".join(render_message(message, self.names, channels))
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
                at = datetime.fromtimestamp(float(message["ts"]), self.plan.zone).strftime("%H:%M:%S")
                who = self.names.get(message.get("user", ""), "War Room")
                self.say(f"  #{channel.name} {at} {who}{' (updated)' if previous is not None else ''}:")
                for line in rendered.splitlines():
                    self.say(f"      {line}")
        ephemerals = self.emulator.ephemerals()
        for ephemeral in ephemerals[self.ephemerals_seen :]:
            who = self.names.get(ephemeral.get("user") or "", "someone")
            text = "\n".join(render_message(ephemeral, self.names, channels))
            self.say(f"  (only {who} sees) " + text.replace("\n", "\n      "))
        self.ephemerals_seen = len(ephemerals)


# ---- the script ---------------------------------------------------------------------------------


@dataclass
class Demo:
    runtime: Runtime
    emulator: SlackEmulator
    slack: SignedSlack
    app_url: str
    transcript: Transcript
    posts: list[dict[str, Any]]
    opens_at: datetime
    missing: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    channel_id: str = ""

    def settle(self, predicate: Callable[[SlackEmulator], Any] | None = None) -> Any:
        """Wait for the app's work after the ack: `predicate`, then no Slack call for a moment."""
        result = self.emulator.wait_for(predicate, timeout=STEP_TIMEOUT) if predicate else None
        deadline = time.monotonic() + STEP_TIMEOUT
        seen = -1
        while time.monotonic() < deadline and seen != len(self.emulator.calls):
            seen = len(self.emulator.calls)
            time.sleep(QUIET_SECONDS)
        self.transcript.flush()
        return result

    def has(self, subcommand: str) -> bool:
        from handlers.commands import SUBCOMMANDS

        if subcommand not in SUBCOMMANDS:
            self.missing.append(f"/crisis {subcommand}")
            self.transcript.say(f"\n  (skipped: /crisis {subcommand} is not built yet)")
            return False
        return True

    def command(
        self,
        user_id: str,
        text: str,
        predicate: Callable[[SlackEmulator], Any] | None = None,
        channel_id: str | None = None,
    ) -> Any:
        if not self.has(text.split()[0]):
            return None
        self.transcript.action(user_id, f"types /crisis {text}")
        self.slack.command(text, user_id, channel_id or self.channel_id)
        return self.settle(predicate)

    def click(self, user_id: str, action_id: str, label: str, value: str | None = None) -> bool:
        try:
            find_button(self.emulator.messages(self.channel_id), action_id, value)
        except LookupError:
            self.missing.append(f"button {label} ({action_id})")
            self.transcript.say(f"\n  (skipped: no [{label}] button in the channel)")
            return False
        self.transcript.action(user_id, f"clicks [{label}]")
        self.slack.click(action_id, user_id, self.channel_id, value)
        return True

    def ingest(
        self, posts: list[dict[str, Any]], *, at: Callable[[dict[str, Any]], datetime], label: str
    ) -> None:
        """POST these posts to /mentions, as a monitoring tool would."""
        batch = []
        for post in posts:
            item = {key: value for key, value in post.items() if key != "minutes"}
            item["created_at"] = at(post).isoformat()
            batch.append(item)
        for start in range(0, len(batch), 100):
            response = httpx.post(
                self.app_url + "/mentions",
                json={"mentions": batch[start : start + 100]},
                headers={"Authorization": f"Bearer {INGEST_TOKEN}"},
                timeout=30,
            )
            if response.status_code != 202:
                problem = (
                    f"POST /mentions answered {response.status_code}: {' '.join(response.text.split())[:160]}"
                )
                self.failed.append(problem)
                self.transcript.say(f"  ({problem})")
                return
        self.transcript.say(f"\n~ {len(batch)} posts arrive through POST /mentions ({label})")

    def ingest_now(self, posts: list[dict[str, Any]], label: str) -> None:
        now = utcnow()
        count = len(posts)
        self.ingest(
            posts, at=lambda post: now - timedelta(milliseconds=(count - posts.index(post)) * 5), label=label
        )

    def run(self) -> None:
        emu, say = self.emulator, self.transcript.say
        before = [p for p in self.posts if p["minutes"] < 0]
        during = [p for p in self.posts if 0 <= p["minutes"] <= 90]
        after = [p for p in self.posts if p["minutes"] > 90]
        say("== Acme Air, a Friday morning. The check-in system fails; the internet notices. ==")
        self.ingest(
            before,
            at=lambda post: self.opens_at + timedelta(minutes=post["minutes"]),
            label="the three hours before anyone opens an incident",
        )

        comms = emu.channel_by_name("comms")
        assert comms is not None
        opened = self.command(
            LEAD,
            "open sev2 outage Check-in and app outage delaying flights",
            lambda e: next(
                (c for c in e.channels.values() if c.name.startswith("crisis-") and c.messages), None
            ),
            channel_id=comms.id,
        )
        if opened is None:
            raise RuntimeError("the incident channel was never created; nothing else can run")
        self.channel_id = opened.id
        self.command(LEAD, f"assign liaison <@{LIAISON}>")
        self.command(
            MONITOR, "fact Check-in and the app have been down since 07:40 UTC; aircraft and crews are fine"
        )
        self.command(MONITOR, "fact No customer data was accessed: the outage is a failed database upgrade")
        self.command(LEAD, "message We're sorry. Flights are operating with delays; check-in desks are open.")
        self.command(MONITOR, "digest", self._new_message())
        self.command(MONITOR, "rumor Acme Air was hacked and passenger data leaked")
        self.ingest_now(during[: len(during) // 2], "the first part of the incident")

        first = self.command(
            DRAFTER,
            "draft x Reply to @mira_on_the_move: 300 passengers at the gate, no information",
            self._button("draft_approve"),
        )
        if first:
            draft_id = first[1]["value"]
            if self.click(DRAFTER, "draft_edit", "Edit", draft_id):
                self.settle(lambda e: e.opened_views)
                self.transcript.action(DRAFTER, "edits the reply and saves it")
                self.slack.submit(
                    "draft_edit_view",
                    {
                        "text": (
                            "We're so sorry for the wait. Check-in is down and our gate teams "
                            "are boarding by hand; "
                            "flights are running with delays, not cancellations. Updates every 30 min here."
                        )
                    },
                    DRAFTER,
                )
                self.settle()
            # The edit made a new revision: the approver clicks the message as it shows now.
            if self.click(APPROVER, "draft_approve", "Approve"):
                self.settle()
        second = self.command(
            DRAFTER,
            "draft x Reply to skylinedaily's thread asking whether Acme Air was hacked",
            self._button("draft_approve", exclude=first[1]["value"] if first else None),
        )
        if second:
            draft_id = second[1]["value"]
            if self.click(DRAFTER, "draft_regenerate", "Regenerate", draft_id):
                self.settle()
            # Regenerating replaced the draft: the newest one carries the buttons now.
            if self.click(APPROVER, "draft_reject", "Reject"):
                self.settle(lambda e: len(e.opened_views) >= 2)
                self.transcript.action(APPROVER, "gives a reason and rejects it")
                self.slack.submit(
                    "draft_reject_view",
                    {
                        "reason": (
                            "Don't repeat the word 'hacked', even to deny it. "
                            "Lead with the confirmed fact instead."
                        )
                    },
                    APPROVER,
                )
                self.settle()
        if self.click(LEAD, "rumour_refuted", "Refuted"):
            self.settle()
        self.command(LEAD, "decide Offer free same-day rebooking to every delayed passenger")
        self.ingest_now(during[len(during) // 2 :], "the rest of the incident")
        self.command(LEAD, "severity sev3")
        self.command(LEAD, "status Check-in restored at 10:05 UTC; queues clearing, delays shrinking")
        self.command(LEAD, "resolve Check-in restored, no data accessed, rebooking offered to all")
        self.ingest_now(after, "after the incident")
        self.command(LEAD, "export html", lambda e: e.files)

    def _new_message(self) -> Callable[[SlackEmulator], bool]:
        count = len(self.emulator.messages(self.channel_id))
        return lambda e: len(e.messages(self.channel_id)) > count

    def _button(self, action_id: str, exclude: str | None = None) -> Callable[[SlackEmulator], Any]:
        def find(emulator: SlackEmulator) -> Any:
            message, block_id, element = find_button(emulator.messages(self.channel_id), action_id, None)
            return None if element.get("value") == exclude else (message, element)

        return find


# ---- running it ---------------------------------------------------------------------------------


@contextmanager
def serve_app(runtime: Runtime) -> Iterator[str]:
    """The real Flask+Bolt app served by waitress on a free local port, and its worker, on threads."""
    from bot.server import InProcessApp

    app = InProcessApp(runtime).start()
    try:
        yield app.url
    finally:
        app.stop()


def load_posts(path: Path = MENTIONS_FILE) -> list[dict[str, Any]]:
    """The bundled sample posts, in time order."""
    with path.open(encoding="utf-8") as lines:
        return sorted((json.loads(line) for line in lines if line.strip()), key=lambda post: post["minutes"])


def write_exports(runtime: Runtime, incident_id: int, out_dir: Path) -> list[Path]:
    """All four formats of the incident's export into `out_dir`."""
    from bot.exports import FORMATS, export_filename, write_export
    from models import Incident, transaction

    out_dir.mkdir(parents=True, exist_ok=True)
    with transaction(runtime.sessions) as session:
        incident = session.get(Incident, incident_id)
        assert incident is not None
        names = {fmt: export_filename(incident, fmt) for fmt in FORMATS}
    written = []
    for fmt, name in names.items():
        path = out_dir / name
        with path.open("w", encoding="utf-8", newline="") as out:
            write_export(runtime.sessions, incident_id, fmt, runtime.plan, out, runtime.slack)
        written.append(path)
    return written


def run_demo(out_dir: Path, quiet: bool) -> int:
    """Run the scripted crisis and write its exports; 0 when every step ran, else 1."""
    from models import Incident, make_engine

    started = time.monotonic()
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.WARNING)  # the app's INFO logs would drown the transcript
    plan = demo_plan()
    out = sys.stdout
    try:
        with tempfile.TemporaryDirectory(prefix="warroom-demo-") as folder, SlackEmulator() as emulator:
            database_url = f"sqlite:///{Path(folder) / 'demo.db'}"
            engine = make_engine(database_url)
            Base.metadata.create_all(engine)
            engine.dispose()
            for user_id, (name, real_name) in PEOPLE.items():
                emulator.add_user(user_id, name, real_name=real_name, tz=plan.timezone)
            emulator.add_channel("comms", list(PEOPLE))
            runtime = build_runtime(demo_settings(database_url, emulator.api_url), plan)
            names = {user_id: real_name for user_id, (_, real_name) in PEOPLE.items()}
            names[emulator.bot_user_id] = "War Room"
            transcript = Transcript(emulator, plan, out, quiet, names=names)
            try:
                with serve_app(runtime) as app_url:
                    demo = Demo(
                        runtime,
                        emulator,
                        SignedSlack(app_url, emulator),
                        app_url,
                        transcript,
                        load_posts(),
                        opens_at=utcnow(),
                    )
                    try:
                        demo.run()
                    except (AssertionError, LookupError, RuntimeError, httpx.HTTPError) as exc:
                        demo.failed.append(str(exc).splitlines()[0])
                        transcript.say(f"\n  (the demo stopped: {str(exc).splitlines()[0]})")
                    with runtime.sessions() as session:
                        incident = session.query(Incident).order_by(Incident.id.desc()).first()
                    if incident is None:
                        print(
                            "warroom demo: no incident was opened, so there is nothing to export",
                            file=sys.stderr,
                        )
                        return 1
                    written = write_exports(runtime, incident.id, out_dir)
            finally:
                runtime.engine.dispose()
            if emulator.errors:
                demo.failed += [f"Slack would refuse: {error}" for error in emulator.errors]
    finally:
        root.setLevel(level)
    elapsed = time.monotonic() - started
    transcript.say("")
    for path in written:
        print(f"wrote {path}", file=out)
    if not quiet:
        print(f"demo finished in {elapsed:.1f} s", file=out)
    for problem in demo.missing:
        print(f"warroom demo: not built yet: {problem}", file=sys.stderr)
    for problem in demo.failed:
        print(f"warroom demo: {problem}", file=sys.stderr)
    return 1 if demo.missing or demo.failed else 0
