"""Flows read without Bolt: the open flow against a fake Slack port records each step, tells the
opener, and resumes from the step that failed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from bot.flows import opening
from bot.flows.port import Brief, Channel, Message, Notice, Opened, OpenFailed, SlackFailure
from bot.incidents import IncidentSnapshot
from bot.runtime import Runtime
from models import Incident, TimelineEvent, transaction
from tests.conftest import APPROVER, DRAFTER, LEAD, MONITOR, MONITOR_GROUP


@dataclass
class FakePort:
    """A Slack that always answers, remembers what it was asked, and fails where told to."""

    taken: set[str] = field(default_factory=set)
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

    def post(self, channel_id: str, message: Message) -> str:
        self._call("post", message)
        return "1700000000.000100"

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
        assert incident is not None and incident.status == "open" and incident.brief_ts == "1700000000.000100"
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
