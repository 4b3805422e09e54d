"""The one clock: nothing reads the system clock for domain time but `bot.infra.clock`, and the rows a
command writes carry the clock's time (so a drill's timeline is in simulated minutes)."""

from __future__ import annotations

import ast
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.background.runtime import Runtime
from bot.crisis import timeline
from bot.demo.signed_slack import SlackClient
from bot.demo.slack_emulator import SlackEmulator
from bot.infra.clock import ManualClock, SimulatedClock, SystemClock, now, running_on
from models import Fact
from tests.conftest import MONITOR
from tests.fixtures_lifecycle import events, open_incident, rows, wait_until

ROOT = Path(__file__).resolve().parents[1]
# Reading the system clock is allowed here only, each for a reason that is not domain time.
ALLOWED = {
    "bot/infra/clock.py": "the clock itself",
    "bot/demo/slack_emulator.py": "Slack's own clock (message ts, trigger ids), not the bot's",
    "bot/demo/signed_slack.py": "signing requests as Slack does needs the real time in X-Slack-Request-Timestamp",
}
SYSTEM_CLOCK_CALLS = {("datetime", "now"), ("datetime", "utcnow"), ("datetime", "today"), ("date", "today"),
                      ("time", "time"), ("time", "time_ns")}


def _system_clock_reads(path: Path, root: Path = ROOT) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)
                and (node.func.value.id, node.func.attr) in SYSTEM_CLOCK_CALLS):
            found.append(f"{path.relative_to(root)}:{node.lineno}: {node.func.value.id}.{node.func.attr}()")
    return found


def test_nothing_but_the_clock_reads_the_system_clock() -> None:
    offenders = [
        line
        for folder in ("bot", "handlers", "models")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if str(path.relative_to(ROOT)) not in ALLOWED
        for line in _system_clock_reads(path)
    ]
    assert offenders == [], "read the time from bot.infra.clock instead:\n" + "\n".join(offenders)


def test_the_rule_sees_a_direct_read(tmp_path: Path) -> None:
    source = tmp_path / "x.py"
    source.write_text("import time\nfrom datetime import datetime\nstamp = datetime.now()\nt = time.time()\n"
                      "elapsed = time.monotonic()\n")
    assert _system_clock_reads(source, tmp_path) == ["x.py:3: datetime.now()", "x.py:4: time.time()"]


def test_a_manual_clock_moves_only_when_told() -> None:
    start = datetime(2026, 1, 1, 12, tzinfo=UTC)
    manual = ManualClock(start)
    with running_on(manual):
        assert now() == start
        manual.advance(timedelta(minutes=30))
        assert now() == start + timedelta(minutes=30)
        manual.sleep_until(start + timedelta(hours=2))
        assert now() == start + timedelta(hours=2)
        with pytest.raises(ValueError):
            manual.advance(timedelta(seconds=-1))
    assert abs((now() - datetime.now(UTC)).total_seconds()) < 5


def test_a_simulated_clock_runs_faster_than_real_time() -> None:
    start = datetime(2026, 1, 1, 12, tzinfo=UTC)
    simulated = SimulatedClock(start, speed=3600)
    time.sleep(0.05)
    elapsed = (simulated.now() - start).total_seconds()
    assert elapsed >= 0.05 * 3600 * 0.9, elapsed
    simulated.sleep_until(simulated.now() + timedelta(minutes=2))  # 2 simulated minutes: about 33 ms
    assert (simulated.now() - start).total_seconds() >= elapsed + 120
    with pytest.raises(ValueError):
        SimulatedClock(datetime(2026, 1, 1), speed=60)
    with pytest.raises(ValueError):
        SimulatedClock(start, speed=0)
    assert isinstance(SystemClock().now().tzinfo, type(UTC))


def test_a_command_records_its_timeline_on_the_bots_clock(
    clock: ManualClock, slack: SlackClient, emulator: SlackEmulator, runtime: Runtime
) -> None:
    room = open_incident(slack, emulator, runtime)
    clock.advance(timedelta(hours=3))
    slack.command("fact The recall covers batch 12 only", user_id=MONITOR, channel_id=room.channel_id)
    wait_until(lambda: rows(runtime, Fact, incident_id=room.id), what="the fact")
    assert rows(runtime, Fact, incident_id=room.id)[0].added_at == datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    assert events(runtime, room.id, timeline.FACT_ADDED)[0].at == datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
