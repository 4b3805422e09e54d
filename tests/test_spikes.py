"""Brand-wide spike alerts: thresholds, the alert in the alert channel, once per cooldown across processes."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from bot.background.runtime import Runtime, build_runtime
from bot.background.scheduler import Scheduler
from bot.crisis.plan import SpikeThresholds
from bot.demo.slack_emulator import SlackEmulator
from bot.infra.errors import SlackFailure
from bot.infra.settings import Settings
from bot.listening.spikes import judge, judge_windows
from handlers.slack_gateway import job_gateway
from models import SpikeAlert, transaction, utcnow
from tests.conftest import make_test_plan
from tests.fixtures_drafts import message_text
from tests.fixtures_mentions import add_mentions, make_incident

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=utcnow().tzinfo)


def test_judge_applies_each_threshold() -> None:
    limits = SpikeThresholds(min_count=20, z_score=3, ratio=2, negative_share=0.5)
    calm = [10, 12, 9, 11, 10, 10, 12, 11]
    assert judge(limits, 12, 1, calm, T0, T0).reasons == []
    assert judge(limits, 19, 19, [0] * 8, T0, T0).reasons == []  # under min_count, whatever else
    loud = judge(limits, 40, 4, calm, T0, T0)
    assert loud.is_spike and any("z-score" in r for r in loud.reasons) and any("×" in r for r in loud.reasons)
    angry = judge(limits, 22, 12, [20] * 8, T0, T0)
    assert [r for r in angry.reasons if "negative" in r] and len(angry.reasons) == 1


def seed_spike(runtime: Runtime, end: datetime) -> None:
    baseline = [
        {"text": "acme air ok", "created_at": end - timedelta(minutes=15 * (1 + n % 8) + 1, seconds=n)}
        for n in range(40)
    ]
    burst = [
        {
            "text": "acme air lost my bag",
            "created_at": end - timedelta(seconds=5 + 10 * n),
            "sentiment_label": "negative",
        }
        for n in range(45)
    ]
    add_mentions(runtime, baseline + burst)


def alerts(runtime: Runtime) -> int:
    with transaction(runtime.sessions) as session:
        return int(session.scalar(select(func.count()).select_from(SpikeAlert)) or 0)


def test_spike_alert_fires_once_per_cooldown(settings: Settings, emulator: SlackEmulator) -> None:
    channel = emulator.add_channel("comms-alerts")
    runtime = build_runtime(settings, make_test_plan(alert_channel="#comms-alerts"))
    try:
        now = utcnow().replace(second=30)
        seed_spike(runtime, now.replace(second=0))
        scheduler = Scheduler(runtime, job_gateway(runtime))
        ts = scheduler.check_spikes(now)
        assert ts is not None
        [message] = emulator.messages(channel)
        [button] = [e for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]
        assert button["action_id"] == "open_incident"
        prefill = json.loads(button["value"])
        assert prefill["severity"] == "sev2" and "spike" in prefill["title"]
        assert emulator.errors == []

        # Still spiking a minute later, and 59 minutes later: the cooldown (60 min) keeps it quiet.
        assert scheduler.check_spikes(now + timedelta(minutes=1)) is None
        seed_spike(runtime, (now + timedelta(minutes=59)).replace(second=0))
        assert scheduler.check_spikes(now + timedelta(minutes=59)) is None
        assert alerts(runtime) == 1
        # After the cooldown a new spike alerts again.
        seed_spike(runtime, (now + timedelta(minutes=61)).replace(second=0))
        assert scheduler.check_spikes(now + timedelta(minutes=61)) is not None
        assert alerts(runtime) == 2
        with transaction(runtime.sessions) as session:
            first = session.scalars(select(SpikeAlert).order_by(SpikeAlert.id)).first()
            assert first is not None and (first.channel_id, first.slack_ts) == (channel, ts)
    finally:
        runtime.engine.dispose()


def test_two_processes_checking_at_once_alert_once(settings: Settings, emulator: SlackEmulator) -> None:
    channel = emulator.add_channel("comms-alerts")
    plan = make_test_plan(alert_channel=channel)
    runtimes = [build_runtime(settings, plan) for _ in range(2)]
    try:
        now = utcnow()
        seed_spike(runtimes[0], now.replace(second=0))
        barrier = threading.Barrier(4)
        results: list[str | None] = []

        def check(runtime: Runtime, offset: int) -> None:
            barrier.wait()
            results.append(Scheduler(runtime, job_gateway(runtime)).check_spikes(now + timedelta(minutes=offset)))

        # Two processes, two different minutes each: only the cooldown can stop the second window.
        threads = [threading.Thread(target=check, args=(r, o)) for r in runtimes for o in (0, 1)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(results) == 4 and sum(r is not None for r in results) == 1
        assert alerts(runtimes[0]) == 1
        assert len(emulator.messages(channel)) == 1
    finally:
        for runtime in runtimes:
            runtime.engine.dispose()


def test_no_alert_channel_means_logged_only(settings: Settings, emulator: SlackEmulator) -> None:
    runtime = build_runtime(settings, make_test_plan(alert_channel=None))
    try:
        now = utcnow()
        seed_spike(runtime, now.replace(second=0))
        assert Scheduler(runtime, job_gateway(runtime)).check_spikes(now) is None
        assert alerts(runtime) == 1  # the spike is still recorded, so the cooldown holds
        assert emulator.calls_to("chat.postMessage") == []
    finally:
        runtime.engine.dispose()


def test_an_alert_slack_refused_does_not_silence_the_next_check(
    settings: Settings, emulator: SlackEmulator
) -> None:
    channel = emulator.add_channel("comms-alerts")
    runtime = build_runtime(settings, make_test_plan(alert_channel=channel))
    try:
        now = utcnow().replace(second=30)
        seed_spike(runtime, now.replace(second=0))
        scheduler = Scheduler(runtime, job_gateway(runtime))
        emulator.fail("chat.postMessage", error="channel_not_found")
        with pytest.raises(SlackFailure):
            scheduler.check_spikes(now)
        assert alerts(runtime) == 0
        assert scheduler.check_spikes(now + timedelta(minutes=1)) is not None
        assert alerts(runtime) == 1
        assert len(emulator.messages(channel)) == 1
    finally:
        runtime.engine.dispose()


def test_negativity_is_a_shift_against_the_baselines_own_share() -> None:
    limits = SpikeThresholds(min_count=20, z_score=3, ratio=2, negative_points=20)
    steady = [40] * 8
    # A brand whose normal traffic is 70 % complaints: a window at 75 % is not news.
    grumbly = judge(limits, 40, 30, steady, T0, T0, [28] * 8)
    assert grumbly.reasons == [] and grumbly.baseline_negative_share == 0.7 and grumbly.shift_points == 5
    # A brand at 30 % that jumps to 55 %: 25 points above its baseline.
    [reason] = judge(limits, 40, 22, steady, T0, T0, [12] * 8).reasons
    assert reason == "55% negative, 25 points above the baseline's 30% ≥ 20"
    # With no posts in the baseline there is nothing to compare with: the absolute share decides.
    assert judge(limits, 40, 30, [0] * 8, T0, T0, [0] * 8).reasons[-1] == "75% negative ≥ 50%"
    # negative_points: null keeps the absolute rule.
    absolute = SpikeThresholds(min_count=20, z_score=3, ratio=2, negative_points=None)
    assert judge(absolute, 40, 30, steady, T0, T0, [28] * 8).reasons == ["75% negative ≥ 50%"]


def test_persistence_needs_two_consecutive_windows() -> None:
    once = SpikeThresholds(min_count=20, ratio=2, baseline_windows=2)
    twice = once.model_copy(update={"persistence": 2})
    # newest first: a burst only in the newest window, then a burst in two windows.
    burst = [(60, 0), (10, 0), (10, 0), (10, 0)]
    assert judge_windows(once, burst, T0).is_spike
    held = judge_windows(twice, burst, T0)
    assert not held.is_spike and held.unconfirmed
    assert judge_windows(twice, [(60, 0), (40, 0), (10, 0), (10, 0)], T0).is_spike


def seed_explained_spike(runtime: Runtime, end: datetime, burst: int = 45) -> None:
    """A baseline of calm posts, 20 % negative, then a burst of angry posts about lost bags."""
    baseline = [
        {"text": "acme air flight ok today", "created_at": end - timedelta(minutes=15 * (1 + n % 8) + 1, seconds=n),
         "sentiment_label": "negative" if n % 5 == 0 else "neutral"}
        for n in range(40)
    ]
    posts = [
        {"text": "acme air lost my luggage <!channel>" if n == 0 else f"acme air lost my luggage again {n}",
         "created_at": end - timedelta(seconds=5 + 10 * (n % 80)), "author": f"angry{n}",
         "author_followers": 1000 * n or 10**6, "url": f"https://x.example/{n}", "sentiment_label": "negative"}
        for n in range(burst)
    ]
    add_mentions(runtime, baseline + posts)


def test_an_alert_says_what_crossed_and_what_changed(settings: Settings, emulator: SlackEmulator) -> None:
    channel = emulator.add_channel("comms-alerts")
    runtime = build_runtime(settings, make_test_plan(alert_channel="#comms-alerts"))
    try:
        now = utcnow().replace(second=30)
        seed_explained_spike(runtime, now.replace(second=0))
        assert Scheduler(runtime, job_gateway(runtime)).check_spikes(now) is not None
        [message] = emulator.messages(channel)
        text = message_text(message)
        assert "*What crossed*" in text and "z-score" in text and "× the baseline" in text
        assert "80 points above the baseline's 20% ≥ 20" in text  # 8 of 40 baseline posts were negative
        assert "100% negative vs 20% in the baseline (+80 points)" in text
        assert "*Rising terms*" in text and "`luggage`" in text and "`lost`" in text
        assert "*Top posts by reach*" in text and "*angry44* (44k followers, negative)" in text
        assert "*Narratives*" in text and "lost" in text.split("*Narratives*")[1].split("*Top posts")[0]
        assert "45 posts (100%), new, 100% negative" in text  # the burst is one story the baseline lacked
        assert "<!channel>" not in text and "lost my luggage &lt;!channel&gt;" in text  # the top post, escaped
        [call] = emulator.calls_to("chat.postMessage")
        assert (call.args.get("unfurl_links"), call.args.get("unfurl_media")) == (False, False)
        with transaction(runtime.sessions) as session:
            [alert] = session.scalars(select(SpikeAlert)).all()
            explanation = alert.figures["explanation"]
            assert explanation["rising_terms"][0]["term"] in {"lost", "luggage"}
            assert alert.figures["shift_points"] == 80 and alert.figures["incidents"] == []
    finally:
        runtime.engine.dispose()


def test_while_an_incident_is_open_notes_go_to_it_only_when_volume_doubles(
    settings: Settings, emulator: SlackEmulator,
) -> None:
    alert_channel = emulator.add_channel("comms-alerts")
    runtime = build_runtime(settings, make_test_plan(alert_channel="#comms-alerts"))
    try:
        incident = make_incident(runtime, emulator)
        assert incident.channel_id is not None
        start = utcnow().replace(second=30)
        scheduler = Scheduler(runtime, job_gateway(runtime))
        seed_explained_spike(runtime, start.replace(second=0))
        assert scheduler.check_spikes(start) is not None
        assert emulator.messages(alert_channel) == []  # the open incident covers the brand
        [note] = emulator.messages(incident.channel_id)
        assert "Mentions doubled since the last alert" in message_text(note)
        assert "open_incident" not in json.dumps(note["blocks"])

        # Still spiking, same volume, two minutes later: quiet (no cooldown needed, nothing doubled).
        later = start + timedelta(minutes=2)
        seed_explained_spike(runtime, later.replace(second=0), burst=20)
        assert scheduler.check_spikes(later) is None
        # Volume doubled since the last alert: a second note, and still nothing in the alert channel.
        doubled = start + timedelta(minutes=4)
        seed_explained_spike(runtime, doubled.replace(second=0), burst=80)
        assert scheduler.check_spikes(doubled) is not None
        assert len(emulator.messages(incident.channel_id)) == 2 and emulator.messages(alert_channel) == []
        assert alerts(runtime) == 2
    finally:
        runtime.engine.dispose()
