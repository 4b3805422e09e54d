"""What a drill replays: a plan's drill (`drills:`) or a stream file, validated, and the plan a drill runs on.

A leaf of the demo package: `/crisis drill` (handlers/drill.py) validates a drill with it before
starting one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.crisis.plan import ChannelSettings, Feeds, Plan
from bot.demo.stream import Stream, load_stream
from bot.exports.report import duration_text
from bot.infra.errors import CommandError

DEFAULT_SPEED = 60.0
BUNDLED_STREAMS = Path(__file__).with_name("data")

# Plan keys a drill runs with as they are. The rest are replaced (`drill_plan`) or left out; a key added
# to the plan later stays out of drills until it is listed here (tests/test_drill.py keeps the lists whole).
DRILL_KEEPS = frozenset({"brand", "timezone", "spike", "escalation", "severities", "roles", "playbooks", "tone",
                         "mentions", "approval", "drills"})
# A drill never publishes, and never posts outside its own channels.
DRILL_REPLACES = frozenset({"alert_channel", "channel", "feeds", "publishing", "stakeholder_channel"})


# ---- what to replay ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DrillSetup:
    """A validated stream and how to replay it."""

    stream: Stream
    speed: float = DEFAULT_SPEED
    title: str | None = None
    playbook: str | None = None
    alert_channel: str | None = None
    platform: str | None = None

    @property
    def incident_title(self) -> str:
        return self.title or f"Drill: {self.stream.path.stem.replace('_', ' ')}"[:150]

    def summary(self) -> str:
        """`301 posts over 5 h 24 min, replayed at 60× (about 5 min)`."""
        span = self.stream.span.total_seconds()
        return (f"{len(self.stream.posts):,} posts over {duration_text(span)}, replayed at {self.speed:g}× "
                f"(about {duration_text(span / self.speed)})")

    def command(self, *, report_to: str) -> list[str]:
        """`warroom drill` arguments that replay this offline and report to `report_to`."""
        arguments = [str(self.stream.path.resolve()), "--speed", f"{self.speed:g}", "--offline", "--quiet",
                     "--report-to", report_to]
        for flag, value in (("--title", self.title), ("--playbook", self.playbook), ("--platform", self.platform)):
            if value:
                arguments += [flag, value]
        return arguments


def stream_file(name: str, plan_file: Path) -> Path:
    """A plan drill's `file`: relative to the plan's folder, else one of the streams bundled with War Room."""
    path = Path(name).expanduser()
    if path.is_absolute():
        return path
    beside = plan_file.parent / path
    bundled = BUNDLED_STREAMS / path
    return bundled if not beside.exists() and bundled.exists() else beside


def plan_drill(plan: Plan, name: str, plan_file: Path) -> DrillSetup:
    """The plan's drill `name`, its stream read and validated (CommandError says what is wrong)."""
    drill = plan.drills.get(name)
    if drill is None:
        known = ", ".join(sorted(plan.drills)) or "none"
        raise CommandError(f"no drill {name!r} in the plan (its drills: {known})")
    defaults = {"platform": drill.platform} if drill.platform else {}
    stream = load_stream(stream_file(drill.file, plan_file), defaults)
    return DrillSetup(stream, drill.speed, drill.title, drill.playbook, drill.alert_channel, drill.platform)


def drill_prefix(plan: Plan) -> str:
    """The channel prefix of a drill: the plan's, plus `-drill` (within the 20 characters a prefix may have)."""
    return f"{plan.channel.prefix[:14]}-drill"


def drill_plan(plan: Plan, alert_channel: str, team: dict[str, str] | None = None) -> Plan:
    """The plan a drill runs on: `<prefix>-drill` channels, alerts to `alert_channel`, no feeds, only the keys
    known to be safe in a drill; with `team` (role → user), those people in those roles and nobody else."""
    values: dict[str, Any] = {name: getattr(plan, name) for name in DRILL_KEEPS}
    values["channel"] = ChannelSettings(prefix=drill_prefix(plan), private=plan.channel.private)
    values["alert_channel"] = alert_channel
    values["feeds"] = Feeds(poll_minutes=plan.feeds.poll_minutes)
    if team is not None:
        values["roles"] = {
            name: role.model_copy(update={"members": [team[name]] if name in team else [], "usergroup": None})
            for name, role in plan.roles.items()
        }
    return Plan.model_validate(values)


