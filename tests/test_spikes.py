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
from bot.listening.spikes import judge
from handlers.slack_gateway import job_gateway
from models import SpikeAlert, transaction, utcnow
from tests.conftest import make_test_plan
from tests.fixtures_mentions import add_mentions

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
