"""The App Home: open and recently resolved incidents, and the *Open incident* button."""

from __future__ import annotations

from bot.background.runtime import Runtime
from bot.demo.signed_slack import SlackClient
from bot.demo.slack_emulator import SlackEmulator
from tests.conftest import APPROVER, BYSTANDER, DRAFTER, LEAD, LIAISON, MONITOR
from tests.fixtures_drafts import open_war_room
from tests.fixtures_lifecycle import all_text, incident, open_incident, wait_until


def test_home_lists_open_and_resolved_incidents(
    slack: SlackClient, emulator: SlackEmulator, runtime: Runtime
) -> None:
    live = open_incident(slack, emulator, runtime, "sev1 safety Passenger hurt")
    done = open_incident(slack, emulator, runtime, "Old <!here> rumour")
    slack.command("resolve", user_id=LEAD, channel_id=done.channel_id)
    wait_until(lambda: incident(runtime, done.id).status == "resolved")

    response = slack.event({"type": "app_home_opened", "user": BYSTANDER, "channel": "D0HOME", "tab": "home"})
    assert response.status_code == 200
    home = wait_until(lambda: emulator.published_home(BYSTANDER), what="views.publish")
    text = all_text(home)
    open_part, resolved_part = text.split("Recently resolved")
    assert "Passenger hurt" in open_part and f"<#{live.channel_id}>" in open_part
    assert "SEV1" in open_part and f"lead <@{LEAD}>" in open_part
    assert "Old &lt;!here&gt; rumour" in resolved_part and f"<#{done.channel_id}>" in resolved_part
    assert "<!here>" not in text
    buttons = [e for b in home["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert [b["action_id"] for b in buttons] == ["open_incident"]
    assert emulator.errors == []


def test_home_with_nothing_open(slack: SlackClient, emulator: SlackEmulator, runtime: Runtime) -> None:
    slack.event({"type": "app_home_opened", "user": LEAD, "channel": "D0HOME", "tab": "home"})
    home = wait_until(lambda: emulator.published_home(LEAD))
    assert "No incident is open." in all_text(home)
    slack.event({"type": "app_home_opened", "user": BYSTANDER, "channel": "D0HOME2", "tab": "messages"})
    slack.event({"type": "app_home_opened", "user": LEAD, "channel": "D0HOME", "tab": "home"})
    wait_until(lambda: len(emulator.calls_to("views.publish")) == 2)
    assert emulator.published_home(BYSTANDER) is None


def _home(slack: SlackClient, emulator: SlackEmulator, user_id: str) -> str:
    """Open `user_id`'s Home tab and return every text on it."""
    before = len(emulator.calls_to("views.publish"))
    slack.event({"type": "app_home_opened", "user": user_id, "channel": "D0HOME", "tab": "home"})
    wait_until(lambda: len(emulator.calls_to("views.publish")) > before, what="views.publish")
    home = emulator.published_home(user_id)
    assert home is not None
    return all_text(home)


def _channels(runtime: Runtime, *, private: bool) -> None:
    runtime.plan = runtime.plan.model_copy(
        update={"channel": runtime.plan.channel.model_copy(update={"private": private})}
    )


def test_a_private_incident_is_listed_only_to_its_members(
    slack: SlackClient, emulator: SlackEmulator, runtime: Runtime
) -> None:
    public = open_incident(slack, emulator, runtime, "Baggage delays at Gatwick")
    _channels(runtime, private=True)
    secret = open_incident(slack, emulator, runtime, "Recall of the X200 seats")
    assert emulator.channels[secret.channel_id].is_private
    # Privacy belongs to the channel as it was made, not to what the plan says today.
    _channels(runtime, private=False)

    seen = _home(slack, emulator, BYSTANDER)
    assert "Baggage delays at Gatwick" in seen and f"<#{public.channel_id}>" in seen
    assert "X200" not in seen and secret.channel_id not in seen
    assert "*Open incidents* (1)" in seen  # not even counted
    for member in (LEAD, APPROVER, MONITOR):  # the opener, a plan role, a user-group role
        seen = _home(slack, emulator, member)
        assert "Recall of the X200 seats" in seen and f"<#{secret.channel_id}>" in seen
        assert "Baggage delays at Gatwick" in seen and "*Open incidents* (2)" in seen

    # Given a role, a person is invited, and from then on sees it.
    slack.command(f"assign liaison <@{BYSTANDER}>", user_id=LEAD, channel_id=secret.channel_id)
    wait_until(lambda: BYSTANDER in emulator.channels[secret.channel_id].members, what="the invite")
    assert "Recall of the X200 seats" in _home(slack, emulator, BYSTANDER)

    slack.command("resolve", user_id=LEAD, channel_id=secret.channel_id)
    wait_until(lambda: incident(runtime, secret.id).status == "resolved")
    _, resolved = _home(slack, emulator, LIAISON).split("Recently resolved")
    assert "Nothing resolved yet." in resolved and "X200" not in resolved
    _, resolved = _home(slack, emulator, DRAFTER).split("Recently resolved")
    assert "Recall of the X200 seats" in resolved


def test_where_to_run_names_only_incident_channels_the_person_may_see(
    slack: SlackClient, emulator: SlackEmulator, runtime: Runtime
) -> None:
    public = open_incident(slack, emulator, runtime, "Baggage delays at Gatwick")
    _channels(runtime, private=True)
    secret = open_incident(slack, emulator, runtime, "Recall of the X200 seats")

    for user_id, shown, hidden in ((BYSTANDER, [public], [secret]), (APPROVER, [public, secret], [])):
        answer = slack.command("status", user_id=user_id).json()  # a read: answered in the ack
        assert "works in an incident channel" in answer["text"]
        assert all(f"<#{room.channel_id}>" in answer["text"] for room in shown)
        assert all(room.channel_id not in answer["text"] for room in hidden)


def test_an_incident_with_no_recorded_channel_privacy_follows_the_plan(
    slack: SlackClient, emulator: SlackEmulator, runtime: Runtime
) -> None:
    open_war_room(runtime, emulator)  # rows as an older version left them: no privacy on record
    assert "Gatwick delays" in _home(slack, emulator, BYSTANDER)
    _channels(runtime, private=True)
    assert "Gatwick delays" not in _home(slack, emulator, BYSTANDER)
    assert "Gatwick delays" in _home(slack, emulator, DRAFTER)
