"""`warroom drill`: a recorded stream replayed into a practice incident on a simulated clock.

The stream is validated whole (bad rows named by line, nothing replayed); a drill at high speed fires
its spike alert and digests at the right simulated moments and writes an export in simulated minutes;
every message says DRILL; a drill never writes to a real incident's channel, the plan's alert channel,
a feed or a publishing account; `/crisis drill <name>` runs the plan's drill and reports back.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from slack_sdk.errors import SlackClientError

from bot.background.runtime import Runtime
from bot.cli import main
from bot.crisis.plan import BUNDLED_PLAN, Drill, Plan, PlanError, load_plan, parse_plan
from bot.demo.drill import DRILL_KEEPS, DRILL_REPLACES, DrillResult, DrillSetup, drill_plan, run_offline
from bot.demo.signed_slack import SlackClient
from bot.demo.slack_emulator import SlackEmulator
from bot.demo.stream import StreamError, load_stream
from bot.demo.team import PEOPLE
from bot.exports.report import build_report
from bot.infra.clock import DrillClock, ManualClock
from handlers.drill_slack import DrillBoundaryError, DrillSlackClient
from handlers.render.drill import DRILL_NOTE
from models import transaction
from tests.conftest import BOT_TOKEN, LEAD, MONITOR, SHARED_DATA, SIGNING_SECRET, make_test_plan
from tests.fixtures_lifecycle import all_text, open_incident, wait_until

START = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)  # the drill's "now": the stream's first post lands here


def wave_stream(path: Path) -> Path:
    """Three hours of posts (from 2014, shifted by the drill): a post every 6 minutes for two hours, then
    ten a minute of complaints for half an hour (minutes 120–149), then calm again to minute 174."""
    origin = datetime(2014, 12, 4, 18, 0, tzinfo=UTC)
    lines = []
    for minute in range(175):
        wave = 120 <= minute < 150
        for second in range(0, 50, 5) if wave else ([0] if minute % 6 == 0 else []):
            at = origin + timedelta(minutes=minute, seconds=second)
            text = ("Acme Air check-in is down and nobody tells us anything" if wave
                    else "Smooth flight with Acme Air this morning")
            lines.append({"platform": "x", "id": f"{minute}-{second}", "text": text, "created_at": at.isoformat(),
                          "author": f"flyer{minute}", "author_followers": 100 + minute, "likes": minute % 7})
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n", encoding="utf-8")
    return path


# ---- the stream ----------------------------------------------------------------------------------


def test_a_json_lines_stream_with_bad_rows_is_refused_with_their_line_numbers(tmp_path: Path) -> None:
    stream = tmp_path / "stream.jsonl"
    stream.write_text(
        '{"platform": "x", "id": "1", "text": "fine", "created_at": "2024-05-01T12:00:00Z"}\n'
        '{"platform": "x", "id": "2", "text": "no time"}\n'
        "\n"
        '{"platform": "x", "id": "3", "text": "broken\n'
        '{"platform": "x", "id": "4", "text": "naive", "created_at": "2024-05-01T12:00:00"}\n'
        '{"platform": "x", "id": "5", "text": "", "created_at": "2024-05-01T12:01:00Z", "likes": "many"}\n',
        encoding="utf-8")
    with pytest.raises(StreamError) as refused:
        load_stream(stream)
    problems = str(refused.value)
    assert f"{stream}: line 2: created_at: is required" in problems
    assert f"{stream}: line 4: not valid JSON" in problems
    assert f"{stream}: line 5: created_at: has no UTC offset" in problems
    assert f"{stream}: line 6: text: is required" in problems and "line 6: likes: must be a whole number" in problems
    assert "line 1:" not in problems and "line 3:" not in problems
    assert "nothing was replayed" in problems


def test_a_csv_stream_names_the_line_a_bad_record_starts_on(tmp_path: Path) -> None:
    stream = tmp_path / "stream.csv"
    stream.write_text(
        "platform,id,text,created_at,likes\r\n"
        'x,1,"a post\r\nover two lines",2024-05-01T12:00:00Z,3\r\n'
        "x,2,late,yesterday,1\r\n"
        "x,3,fine,2024-05-01T12:05:00+02:00,\r\n",
        encoding="utf-8")
    with pytest.raises(StreamError, match=r"line 4: created_at: is not an ISO 8601 timestamp") as refused:
        load_stream(stream)
    assert "line 2" not in str(refused.value) and "line 5" not in str(refused.value)
    stream.write_bytes(stream.read_bytes().replace(b"yesterday", b"2024-05-01T11:00:00Z"))
    posts = load_stream(stream).posts
    # In time order, whatever the file's order: 12:05+02:00 is 10:05 UTC.
    assert [post.external_id for post in posts] == ["3", "2", "1"]
    assert posts[2].text == "a post\r\nover two lines"


def test_the_timestamped_dev_sets_are_streams_as_they_are_given_a_platform() -> None:
    sanders = SHARED_DATA / "sanders_twitter_sentiment.csv"
    with pytest.raises(StreamError, match="missing column"):
        load_stream(sanders)  # id,text,label,created_at,source: no platform
    stream = load_stream(sanders, {"platform": "x"})
    assert len(stream.posts) == 3424
    assert {post.platform for post in stream.posts} == {"x"}
    assert stream.start == datetime(2011, 10, 15, 5, 49, 58, tzinfo=UTC)
    assert all(a.created_at <= b.created_at for a, b in zip(stream.posts, stream.posts[1:], strict=False))


def test_a_bad_stream_stops_warroom_drill_before_anything_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    stream = tmp_path / "stream.jsonl"
    stream.write_text('{"platform": "x", "id": "1", "text": "t", "created_at": "soon"}\n', encoding="utf-8")
    assert main(["drill", str(stream), "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert "line 1: created_at: is not an ISO 8601 timestamp" in error
    assert not (tmp_path / "out").exists()  # nothing written, nothing half-replayed


# ---- the clock and the plan ------------------------------------------------------------------------


def test_the_drill_clock_stands_still_until_the_drill_waits_then_stops_exactly_there() -> None:
    clock = DrillClock(START, speed=3600)
    assert clock.now() == START == clock.now()
    clock.sleep_until(START + timedelta(seconds=36))  # 10 ms of real time at 3600×
    assert clock.now() == START + timedelta(seconds=36)
    clock.sleep_until(START)  # the past: at once, and time never goes back
    assert clock.now() == START + timedelta(seconds=36)


def test_a_drill_runs_on_an_allow_list_of_the_plans_keys() -> None:
    # A key added to the plan (publishing accounts, say) stays out of drills until listed on purpose.
    assert set(Plan.model_fields) == DRILL_KEEPS | DRILL_REPLACES
    plan = load_plan(BUNDLED_PLAN)
    assert plan.alert_channel == "#comms-alerts" and plan.feeds.rss and plan.feeds.mastodon
    drilled = drill_plan(plan, "C0DRILLALERTS", {"lead": LEAD})
    assert drilled.alert_channel == "C0DRILLALERTS"
    assert not drilled.feeds.rss and not drilled.feeds.mastodon
    assert drilled.channel.prefix == "crisis-drill"
    assert drilled.roles["lead"].members == [LEAD] and drilled.roles["approver"].members == []


def test_the_plans_drills_are_checked() -> None:
    text = BUNDLED_PLAN.read_text()
    assert load_plan(BUNDLED_PLAN).drills["checkin-outage"].playbook == "outage"
    with pytest.raises(PlanError, match=r"drills: .*playbook 'recall' is not one of the plan's playbooks"):
        parse_plan(text.replace("    playbook: outage               # optional", "    playbook: recall  #"))
    with pytest.raises(PlanError, match=r"drills.checkin-outage.speed:"):
        parse_plan(text.replace("    speed: 60  ", "    speed: 0  "))


# ---- a drill, offline ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def watched() -> Iterator[SlackEmulator]:
    """The emulator a drill runs against, with a real incident's channel and the plan's alert channel."""
    with SlackEmulator() as emulator:
        emulator.add_channel("comms-alerts", [LEAD])
        emulator.add_channel("crisis-20261120-real-incident", [LEAD])
        yield emulator


@pytest.fixture(scope="module")
def drilled(tmp_path_factory: pytest.TempPathFactory, watched: SlackEmulator) -> DrillResult:
    """One drill, at 3600×, of the three-hour wave (the stream's three hours take three seconds)."""
    folder = tmp_path_factory.mktemp("drill")
    setup = DrillSetup(load_stream(wave_stream(folder / "wave.jsonl")), speed=3600, playbook="outage",
                       title="Wave drill")
    return run_offline(setup, load_plan(BUNDLED_PLAN), folder / "out", start=START, emulator=watched)


def minutes(moment: datetime | str) -> float:
    """Simulated minutes since the stream's first post."""
    at = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
    return (at - START).total_seconds() / 60


def test_a_fast_drill_alerts_and_digests_at_the_simulated_moments_they_would_have(drilled: DrillResult) -> None:
    assert drilled.failed == [] and drilled.missing == []
    scorecard = drilled.scorecard
    # The wave starts at minute 120; the 5-minute spike check at 125 sees 51 posts in its 15-minute window.
    assert [minutes(at) for at in scorecard.alerts] == [125]
    # The scripted lead opens 5 minutes later; the monitor asks for a digest 2 minutes after that; the
    # severity's (sev2, outage) 30-minute digest comes at 160; the stream is over at 175 and the lead resolves.
    assert minutes(scorecard.opened_at or START) == 130
    assert [minutes(at) for at in scorecard.digests] == [132, 160]
    text = scorecard.text()
    assert "2 h 05 min after the wave began" in text and "5 min after the first alert" in text
    # The playbook's holding-statement task (due 30 min after the open) was done by the approval at 147.
    assert "tasks done late           0 of 4 tasks" in text


def test_the_drills_export_is_in_simulated_minutes_and_says_drill(drilled: DrillResult) -> None:
    files = {path.suffix: path for path in drilled.exports}
    assert sorted(files) == [".csv", ".html", ".json", ".md"]
    document = json.loads(files[".json"].read_text())
    incident, metrics = document["incident"], document["metrics"]
    assert incident["drill"] is True and incident["channel_name"].startswith("crisis-drill-")
    assert minutes(incident["opened_at"]) == 130 and minutes(incident["resolved_at"]) == 175
    assert metrics["time_to_first_approved_statement"]["seconds"] == 17 * 60  # drafted at 140, approved at 147
    assert metrics["time_to_resolve"]["seconds"] == 45 * 60
    assert metrics["time_to_first_acknowledgement"]["seconds"] == 10 * 60  # the drafter's request, at 140
    # Rates in simulated time: the wave's fifty posts a 5-minute bucket at the minutes it happened, and
    # 205 posts in the 45 minutes the incident was open.
    series = {minutes(bucket["start"]): bucket["negative"] + bucket["neutral"] + bucket["positive"]
              for bucket in document["mentions"]["series"]}
    assert series[130] == 50 and series[150] == 1
    assert document["mentions"]["during"]["per_hour"] == round(205 / 0.75, 2)
    assert files[".md"].read_text().startswith("# DRILL: Wave drill")


def test_every_message_of_a_drill_says_drill_and_stays_in_the_drills_channels(
    drilled: DrillResult, watched: SlackEmulator
) -> None:
    drill_channels = {c.id for c in watched.channels.values() if c.name.startswith("crisis-drill-")}
    assert len(drill_channels) == 2  # its alert channel and the incident's
    for channel_id in drill_channels:
        messages = watched.messages(channel_id)
        assert messages
        for message in messages:
            assert message["text"].startswith("DRILL")  # a file's message: its comment
            assert DRILL_NOTE in all_text(message) or not message.get("blocks")
    for name in ("comms-alerts", "crisis-20261120-real-incident"):
        channel = watched.channel_by_name(name)
        assert channel is not None and watched.messages(channel.id) == []
    writes = [call for method in ("chat.postMessage", "chat.update", "chat.postEphemeral")
              for call in watched.calls_to(method)]
    assert writes and all(call.args["channel"] in drill_channels or call.args["channel"] in PEOPLE
                          for call in writes)


def test_the_drill_client_refuses_to_write_outside_the_drill(emulator: SlackEmulator) -> None:
    real = emulator.add_channel("crisis-20261120-real-incident", [LEAD])
    drill = emulator.add_channel("crisis-drill-alerts", [LEAD])
    client = DrillSlackClient(token=BOT_TOKEN, base_url=emulator.api_url, allowed=[drill])
    emulator.clear_calls()
    for attempt in (lambda: client.chat_postMessage(channel=real, text="hello"),
                    lambda: client.conversations_setTopic(channel=real, topic="x"),
                    lambda: client.files_upload_v2(channel=real, content="x", filename="x.txt")):
        with pytest.raises(DrillBoundaryError):
            attempt()
    assert watched_writes(emulator) == []
    assert issubclass(DrillBoundaryError, SlackClientError)  # handlers treat it as a failed Slack call
    client.chat_postMessage(channel=drill, text="hello")
    assert emulator.messages(drill)[0]["text"] == "DRILL · hello"


def watched_writes(emulator: SlackEmulator) -> list[str]:
    return [call.method for call in emulator.calls
            if call.method.startswith(("chat.", "conversations.set", "files.complete"))]


# ---- /crisis drill <name> ------------------------------------------------------------------------------


@pytest.fixture
def plan(tmp_path: Path) -> Plan:
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"platform": "x", "id": "1", "text": "t", "created_at": "2024-05-01T12:00:00Z"}\n'
                      '{"platform": "x", "id": "2", "text": "t"}\n', encoding="utf-8")
    return make_test_plan(drills={
        "wave": Drill(file=str(wave_stream(tmp_path / "wave.jsonl")), speed=3600, playbook="outage",
                      title="Wave drill"),
        "broken": Drill(file=str(broken)),
    })


def test_crisis_drill_refuses_an_unknown_drill_and_a_bad_stream(
    slack: SlackClient, emulator: SlackEmulator
) -> None:
    comms = emulator.add_channel("comms", [MONITOR])
    slack.command("drill nope", user_id=MONITOR, channel_id=comms)
    told = wait_until(lambda: emulator.ephemerals(user=MONITOR), what="the answer")
    assert "`nope` is not a drill in the plan: use one of `broken`, `wave`" in told[-1]["text"]
    slack.command("drill broken", user_id=MONITOR, channel_id=comms)
    told = wait_until(lambda: emulator.ephemerals(user=MONITOR)[1:], what="the second answer")
    assert "Drill `broken` cannot start; nothing was replayed" in told[-1]["text"]
    assert "line 2: created_at: is required" in told[-1]["text"]
    assert emulator.messages(comms) == []


def test_crisis_drill_replays_the_plans_drill_apart_and_reports_its_scorecard(
    slack: SlackClient, emulator: SlackEmulator, runtime: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # where the bot runs: the drill leaves nothing there

    def left_behind() -> set[Path]:  # the test's own SQLite database (and its WAL files) lives here too
        return {path for path in tmp_path.iterdir() if not path.name.startswith("warroom.db")}

    before = left_behind()
    real = open_incident(slack, emulator, runtime, "Real trouble")
    comms = emulator.add_channel("comms", [MONITOR])
    slack.command("drill wave", user_id=MONITOR, channel_id=comms)
    report = wait_until(lambda: next((m for m in emulator.messages(comms) if "DRILL finished" in all_text(m)), None),
                        timeout=90, what="the drill's report")
    started = emulator.messages(comms)[0]
    assert "DRILL* `wave` started by <@UMONITOR1>" in all_text(started)
    assert "2 h 05 min after the wave began" in all_text(report)
    assert report["text"].startswith("DRILL · ")
    wait_until(lambda: any(f.get("name", "").endswith(".md") for f in emulator.files), what="the export")
    # The drill ran apart: nothing reached the real incident or this workspace's other channels.
    names = {c.name for c in emulator.channels.values()}
    assert not any(name.startswith("crisis-drill") for name in names)
    assert all("DRILL" not in all_text(m) for m in emulator.messages(real.channel_id))
    with transaction(runtime.sessions) as session:
        assert build_report(session, real.id, runtime.plan, {}, START)["incident"]["drill"] is False
    assert left_behind() == before


# ---- the export's first acknowledgement on a clock that stands still -------------------------------


def test_the_first_acknowledgement_is_what_someone_did_after_the_room_was_ready(
    clock: ManualClock, slack: SlackClient, emulator: SlackEmulator, runtime: Runtime
) -> None:
    """The open's own role assignments carry the ready event's time when the clock stands still (a drill's,
    a test's): they are not someone acknowledging the incident."""
    room = open_incident(slack, emulator, runtime)
    clock.advance(timedelta(minutes=7))
    slack.command("fact Only batch 12 is affected", user_id=MONITOR, channel_id=room.channel_id)
    wait_until(lambda: "Only batch 12" in str(emulator.messages(room.channel_id)), what="the fact")
    with transaction(runtime.sessions) as session:
        metrics = build_report(session, room.id, runtime.plan, {}, clock.now())["metrics"]
    assert metrics["time_to_first_acknowledgement"]["seconds"] == 7 * 60


# ---- a drill in a workspace: people respond for real ------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_with_a_workspace_the_drill_is_the_bot_and_people_answer_it(tmp_path: Path, emulator: SlackEmulator) -> None:
    """Slack here is the emulator standing in for a workspace; the test plays a person in it."""
    port = _free_port()
    env = dict(os.environ, SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET,
               SLACK_API_URL=emulator.api_url, PORT=str(port), OPENAI_API_KEY="")
    env.pop("SLACK_APP_TOKEN", None)
    env.pop("WARROOM_PLAN", None)
    drill = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "drill", str(wave_stream(tmp_path / "wave.jsonl")), "--speed", "3600",
         "--playbook", "outage", "--out", str(tmp_path / "out"), "--quiet"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        alerts = wait_until(lambda: emulator.channel_by_name("crisis-drill-alerts"), timeout=30,
                            what="the drill's alert channel")
        wait_until(lambda: emulator.messages(alerts.id), timeout=30, what="the spike alert")
        person = SlackClient(f"http://127.0.0.1:{port}", SIGNING_SECRET, emulator=emulator)
        alerts.members.add(LEAD)
        assert person.command("open outage Wave drill", user_id=LEAD, channel_id=alerts.id).status_code == 200
        room = wait_until(lambda: next((c for c in emulator.channels.values()
                                        if c.name.startswith("crisis-drill-2") and c.messages), None),
                          timeout=30, what="the practice incident's channel")
        assert person.command("resolve Drill done", user_id=LEAD, channel_id=room.id).status_code == 200
        out, err = drill.communicate(timeout=60)
    finally:
        drill.kill()
    assert drill.returncode == 0, err[-2000:]
    assert "DRILL scorecard" in out and "nobody opened" not in out
    document = json.loads(next((tmp_path / "out").glob("*.json")).read_text())
    assert document["incident"]["drill"] is True and document["incident"]["status"] == "resolved"
    assert (tmp_path / "out" / "scorecard.txt").exists()
    for channel in (alerts, room):
        assert all(message["text"].startswith("DRILL") for message in emulator.messages(channel.id))
