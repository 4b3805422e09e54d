"""The scripted team of an offline drill (and of `warroom demo`): invented people in the plan's roles,
answering through the real app with signed slash commands and clicks, each at its simulated moment."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import httpx
from sqlalchemy import func, select

from bot.demo.signed_slack import SlackClient, find_button
from bot.demo.slack_emulator import SlackEmulator
from models import Job, transaction
from models.jobs import QUEUED, RUNNING

if TYPE_CHECKING:
    from bot.demo.replay import DrillRun

SIGNING_SECRET = "drill-signing-secret"  # noqa: S105 - a local, throwaway secret
STEP_TIMEOUT = 15.0
QUIET_SECONDS = 0.05
CALM = timedelta(hours=2)  # the scripted lead resolves once no spike alert has fired for this long

# The scripted team of an offline drill (invented people) and the roles they play.
LEAD, APPROVER, DRAFTER, MONITOR, LIAISON = "UDEMOLEAD", "UDEMOAPPR", "UDEMODRFT", "UDEMOMONI", "UDEMOLIAI"
PEOPLE = {
    LEAD: ("priya", "Priya Shah"),
    APPROVER: ("tom", "Tom Becker"),
    DRAFTER: ("ana", "Ana Ruiz"),
    MONITOR: ("sam", "Sam Okafor"),
    LIAISON: ("jo", "Jo Lindqvist"),
}
TEAM_ROLES = {"lead": LEAD, "approver": APPROVER, "drafter": DRAFTER, "monitor": MONITOR}



class Team:
    """The scripted team of an offline drill: signed commands and clicks into the real app, each at its
    simulated moment (the clock stands still while the app answers)."""

    def __init__(self, run: DrillRun, emulator: SlackEmulator, alert_channel_id: str) -> None:
        self.run = run
        self.emulator = emulator
        self.alert_channel_id = alert_channel_id
        self.slack = SlackClient(run.app_url, SIGNING_SECRET, emulator=emulator)
        self.channel_id = ""
        self.missing: list[str] = []
        self.failed: list[str] = []

    # Hooks for a team that narrates (the demo's transcript).
    def say(self, line: str = "") -> None:
        """Narrate (the demo prints a transcript; a plain drill keeps quiet)."""

    def show(self) -> None:
        """Show what is new in Slack."""

    def acted(self, user_id: str, what: str) -> None:
        self.say(f"\n› {PEOPLE[user_id][1]} {what}")

    @staticmethod
    def _sent(response: httpx.Response) -> None:
        if response.status_code != 200:
            raise RuntimeError(f"the app answered HTTP {response.status_code}: {response.text[:200]}")

    def settle(self, predicate: Callable[[SlackEmulator], Any] | None = None) -> Any:
        """Wait for the app's work after the ack: `predicate`, then no job left in the queue and no Slack
        call for a moment."""
        result = self.emulator.wait_for(predicate, timeout=STEP_TIMEOUT) if predicate else None
        deadline = time.monotonic() + STEP_TIMEOUT
        seen = -1
        while time.monotonic() < deadline and (seen != len(self.emulator.calls) or self._jobs_waiting()):
            seen = len(self.emulator.calls)
            time.sleep(QUIET_SECONDS)
        self.show()
        return result

    def _jobs_waiting(self) -> bool:
        with transaction(self.run.runtime.sessions) as session:
            waiting = select(func.count()).select_from(Job).where(Job.status.in_((QUEUED, RUNNING)))
            return bool(session.scalar(waiting))

    def has(self, subcommand: str) -> bool:
        from handlers.tables import SUBCOMMANDS

        if subcommand not in SUBCOMMANDS:
            self.missing.append(f"/crisis {subcommand}")
            self.say(f"\n  (skipped: /crisis {subcommand} is not built yet)")
            return False
        return True

    def command(self, user_id: str, text: str, predicate: Callable[[SlackEmulator], Any] | None = None,
                channel_id: str | None = None) -> Any:
        if not self.has(text.split()[0]):
            return None
        self.acted(user_id, f"types /crisis {text}")
        self._sent(self.slack.command(text, user_id=user_id, channel_id=channel_id or self.channel_id,
                                      user_name=PEOPLE[user_id][0]))
        return self.settle(predicate)

    def has_button(self, action_id: str) -> bool:
        try:
            find_button(self.emulator.messages(self.channel_id), action_id, None)
        except LookupError:
            return False
        return True

    def click(self, user_id: str, action_id: str, label: str, value: str | None = None) -> bool:
        try:
            find_button(self.emulator.messages(self.channel_id), action_id, value)
        except LookupError:
            self.missing.append(f"button {label} ({action_id})")
            self.say(f"\n  (skipped: no [{label}] button in the channel)")
            return False
        self.acted(user_id, f"clicks [{label}]")
        self._sent(self.slack.block_action(action_id, value, user_id=user_id, channel_id=self.channel_id))
        return True

    def submit(self, callback_id: str, values: dict[str, str], user_id: str) -> None:
        """Submit the modal most recently opened with this callback id, plain-text inputs filled in."""
        self._sent(self.slack.view_submission(
            callback_id, {block_id: {block_id: value} for block_id, value in values.items()}, user_id=user_id))

    def new_message(self) -> Callable[[SlackEmulator], bool]:
        count = len(self.emulator.messages(self.channel_id))
        return lambda emulator: len(emulator.messages(self.channel_id)) > count

    def button(self, action_id: str, exclude: str | None = None) -> Callable[[SlackEmulator], Any]:
        def find(emulator: SlackEmulator) -> Any:
            message, _block_id, element = find_button(emulator.messages(self.channel_id), action_id, None)
            return None if element.get("value") == exclude else (message, element)

        return find

    def open_incident(self, user_id: str, text: str) -> bool:
        """`/crisis open …` in the alert channel; afterwards the team works in the incident's channel."""
        prefix = self.run.runtime.plan.channel.prefix + "-"
        known = set(self.emulator.channels)
        opened = self.command(user_id, f"open {text}", lambda e: next(
            (c for cid, c in e.channels.items() if cid not in known and c.name.startswith(prefix) and c.messages),
            None), channel_id=self.alert_channel_id)
        if opened is None:
            return False
        self.channel_id = opened.id
        return True

    def play(self) -> None:
        """The generic response: open 5 minutes after the first alert, ask for a digest, draft a reply to
        its top post, approve it, and resolve once things are calm (no alert for `CALM` and open at least
        that long) or the stream is over."""
        run = self.run
        if not run.run_until_alert():
            run.run_to_end()
            return
        run.wait(5)
        playbook = f"{run.setup.playbook} " if run.setup.playbook else ""
        if not self.open_incident(LEAD, f"{playbook}{run.setup.incident_title}"):
            self.failed.append("the incident channel was never created")
            run.run_to_end()
            return
        run.wait(2)
        self.command(MONITOR, "digest", self.new_message())
        run.wait(8)
        if self.has_button("draft_reply"):  # the digest's top post (a quiet digest has none)
            self.click(DRAFTER, "draft_reply", "Draft reply")
            drafted = self.settle(self.button("draft_approve"))
        else:
            drafted = self.command(DRAFTER, "draft Reply to the people asking what is happening",
                                   self.button("draft_approve"))
        if drafted:
            run.wait(7)
            if self.click(self.approver, "draft_approve", "Approve", drafted[1]["value"]):
                self.settle()
        opened = run.now()
        run.run_until(run.stream_over, stop=lambda: run.now() - max(opened, run.last_alert() or opened) >= CALM)
        self.command(LEAD, "resolve Calm again: no spike alert for two hours" if run.now() <= run.end
                     else "resolve The drill's stream is over")
        run.run_to_end()

    @property
    def approver(self) -> str:
        return APPROVER if "approver" in self.run.runtime.plan.roles else LEAD


