"""Flows read without Bolt: the open flow against a fake Slack port records each step, tells the
opener, and resumes from the step that failed; the digest and spike-alert flows post, record, and
leave a failed post recorded (a digest) or withdrawn (an alert)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.background.runtime import Runtime
from bot.crisis.incidents import IncidentSnapshot
from bot.demo.slack_emulator import SlackEmulator
from bot.flows import alerts, digests, opening
from bot.flows.port import (
    Brief,
    Channel,
    DigestMessage,
    Message,
    Notice,
    Opened,
    OpenFailed,
    SlackFailure,
    SpikeAlertMessage,
)
from bot.listening.spikes import SpikeVerdict, record_spike_alert
from models import Digest, Incident, SpikeAlert, TimelineEvent, transaction, utcnow
from tests.conftest import APPROVER, DRAFTER, LEAD, MONITOR, MONITOR_GROUP
from tests.fixtures_mentions import add_mentions, make_incident

POSTED_TS = "1700000000.000100"


@dataclass
class FakePort:
    """A Slack that always answers, remembers what it was asked, and fails where told to."""

    taken: set[str] = field(default_factory=set)
    channels: dict[str, str] = field(default_factory=dict)  # `#name` → id, for find_channel
    fail_on: dict[str, str] = field(default_factory=dict)
    calls: list[tuple[str, object]] = field(default_factory=list)
    told: list[Message] = field(default_factory=list)

    def _call(self, method: str, detail: object) -> None:
        self.calls.append((method, detail))
        if method in self.fail_on:
            raise SlackFailure(method, self.fail_on.pop(method), transient=False)

    def bot_user_id(self) -> str | None:
        return "UBOT"

    def create_channel(self, name: str, *, private: bool) -> Channel | None:
        self._call("create_channel", name)
        return None if name in self.taken else Channel(f"C0NEW{abs(hash(name)) % 10**6}", name, private)

    def usergroup_members(self, usergroup: str) -> list[str]:
        self._call("usergroup_members", usergroup)
        return [MONITOR, "UBOT"] if usergroup == MONITOR_GROUP else []

    def invite(self, channel_id: str, users: Sequence[str]) -> list[str]:
        self._call("invite", list(users))
        return []

    def describe_channel(self, incident: IncidentSnapshot) -> None:
        self._call("describe_channel", incident.channel_id)

    def find_channel(self, reference: str) -> str:
        self._call("find_channel", reference)
        return self.channels.get(reference, reference)

    def post(self, channel_id: str, message: Message) -> str:
        self._call("post", message)
        return POSTED_TS

    def upload(self, channel_id: str, *, content: bytes, filename: str, title: str, alt_text: str,
               thread_ts: str | None = None) -> None:
        self._call("upload", {"channel": channel_id, "thread_ts": thread_ts, "png": content.startswith(b"\x89PNG")})

    def pin(self, channel_id: str, ts: str) -> None:
        self._call("pin", ts)

    def tell(self, message: Message) -> None:
        self.told.append(message)


def _timeline(runtime: Runtime, incident_id: int) -> list[str]:
    with transaction(runtime.sessions) as session:
        return [event.kind for event in session.query(TimelineEvent).filter_by(incident_id=incident_id)
                .order_by(TimelineEvent.id)]


def test_the_open_flow_sets_up_the_room_step_by_step(runtime: Runtime) -> None:
    port = FakePort()
    incident_id = opening.open_incident(runtime, port, opener=LEAD, title="Flights delayed at LHR",
                                        severity="sev2", playbook=None)
    assert incident_id is not None
    methods = [method for method, _ in port.calls]
    assert methods == ["create_channel", "usergroup_members", "invite", "describe_channel", "post", "pin"]
    invited = port.calls[2][1]
    assert isinstance(invited, list) and invited[0] == LEAD and {APPROVER, DRAFTER, MONITOR} <= set(invited)
    assert "UBOT" not in invited
    assert isinstance(port.calls[4][1], Brief)
    [told] = port.told
    assert isinstance(told, Opened) and str(told.incident.channel_id).startswith("C0NEW")
    with transaction(runtime.sessions) as session:
        incident = session.get(Incident, incident_id)
        assert incident is not None and incident.status == "open" and incident.brief_ts == POSTED_TS
    assert "incident.opened" in _timeline(runtime, incident_id)


def test_a_taken_channel_name_gets_the_next_suffix(runtime: Runtime) -> None:
    first = FakePort()
    opening.open_incident(runtime, first, opener=LEAD, title="Baggage lost", severity=None, playbook=None)
    name = str(first.calls[0][1])
    second = FakePort(taken={name})
    opening.open_incident(runtime, second, opener=APPROVER, title="Baggage lost", severity=None, playbook=None)
    names = [detail for method, detail in second.calls if method == "create_channel"]
    assert names == [name, f"{name}-2"]


def test_a_failed_step_is_told_and_the_same_open_resumes_from_it(runtime: Runtime) -> None:
    port = FakePort(fail_on={"pin": "not_pinnable"})
    incident_id = opening.open_incident(runtime, port, opener=LEAD, title="Refunds stuck", severity=None,
                                        playbook=None)
    [told] = port.told
    assert isinstance(told, OpenFailed) and told.problem == "Slack answered `not_pinnable`"
    again = FakePort()
    assert opening.open_incident(runtime, again, opener=LEAD, title="Refunds stuck", severity=None,
                                 playbook=None) == incident_id
    assert [method for method, _ in again.calls] == ["pin"]  # only the step that failed
    assert isinstance(again.told[-1], Opened)
    third = FakePort()
    opening.open_incident(runtime, third, opener=LEAD, title="Refunds stuck", severity=None, playbook=None)
    assert third.calls == [] and isinstance(third.told[0], Notice) and "already opened" in third.told[0].text


def _digests(runtime: Runtime) -> list[Digest]:
    with transaction(runtime.sessions) as session:
        rows = list(session.scalars(select(Digest).order_by(Digest.id)))
        session.expunge_all()
        return rows


def test_the_digest_flow_posts_the_digest_and_its_chart_in_the_thread(runtime: Runtime,
                                                                     emulator: SlackEmulator) -> None:
    incident = make_incident(runtime, emulator)
    add_mentions(runtime, [{"text": "acme air delayed", "created_at": utcnow() - timedelta(minutes=5)}])
    port = FakePort()
    digest_id = digests.post_digest(runtime, port, incident.id)
    [(post, message), (upload, detail)] = port.calls
    assert post == "post" and isinstance(message, DigestMessage) and message.figures.incident_id == incident.id
    assert upload == "upload" and detail == {"channel": incident.channel_id, "thread_ts": POSTED_TS, "png": True}
    [digest] = _digests(runtime)
    assert (digest.id, digest.kind, digest.slack_ts, digest.error) == (digest_id, digests.SCHEDULED, POSTED_TS, None)


def test_a_failed_chart_upload_keeps_the_digest_and_notes_the_error(runtime: Runtime,
                                                                   emulator: SlackEmulator) -> None:
    incident = make_incident(runtime, emulator)
    add_mentions(runtime, [{"text": "acme air delayed", "created_at": utcnow() - timedelta(minutes=5)}])
    digests.post_digest(runtime, FakePort(fail_on={"upload": "not_allowed"}), incident.id)
    [digest] = _digests(runtime)
    assert (digest.slack_ts, digest.error) == (POSTED_TS, "chart upload failed: not_allowed")


def test_a_digest_slack_refused_is_recorded_on_the_timeline_and_raised(runtime: Runtime,
                                                                       emulator: SlackEmulator) -> None:
    incident = make_incident(runtime, emulator)
    port = FakePort(fail_on={"post": "channel_not_found"})
    with pytest.raises(SlackFailure, match="channel_not_found"):
        digests.post_digest(runtime, port, incident.id, kind=digests.MANUAL, requested_by=LEAD)
    assert [method for method, _ in port.calls] == ["post"]  # no chart for a digest never posted
    assert _digests(runtime) == []
    assert _timeline(runtime, incident.id)[-1] == "digest.failed"


def _spike(runtime: Runtime) -> tuple[int, SpikeVerdict]:
    now = utcnow()
    verdict = SpikeVerdict(window_start=now - timedelta(minutes=15), window_end=now, count=45, negative=40,
                           baseline=[5] * 8, mean=5.0, z=9.0, ratio=9.0, negative_share=0.89,
                           reasons=["45 mentions, 9× the baseline"])
    runtime.plan = runtime.plan.model_copy(update={"alert_channel": "#comms-alerts"})
    with transaction(runtime.sessions) as session:
        alert = record_spike_alert(session, runtime.plan.spike, verdict)
        assert alert is not None
        return alert.id, verdict


def test_the_spike_alert_flow_posts_in_the_alert_channel_and_marks_the_alert(runtime: Runtime) -> None:
    alert_id, verdict = _spike(runtime)
    port = FakePort(channels={"#comms-alerts": "C0ALERTS"})
    assert alerts.post_spike_alert(runtime, port, alert_id, verdict) == POSTED_TS
    [(find, reference), (post, message)] = port.calls
    assert (find, reference, post) == ("find_channel", "#comms-alerts", "post")
    assert isinstance(message, SpikeAlertMessage) and message.severity == "sev2" and message.verdict == verdict
    with transaction(runtime.sessions) as session:
        alert = session.get(SpikeAlert, alert_id)
        assert alert is not None and (alert.channel_id, alert.slack_ts) == ("C0ALERTS", POSTED_TS)


def test_a_spike_alert_slack_refused_is_withdrawn(runtime: Runtime) -> None:
    alert_id, verdict = _spike(runtime)
    port = FakePort(channels={"#comms-alerts": "C0ALERTS"}, fail_on={"post": "not_in_channel"})
    with pytest.raises(SlackFailure, match="not_in_channel"):
        alerts.post_spike_alert(runtime, port, alert_id, verdict)
    with transaction(runtime.sessions) as session:
        assert session.get(SpikeAlert, alert_id) is None  # so the next check alerts again, not the cooldown
