"""The App Home: open and recently resolved incidents, and the *Open incident* button."""

from __future__ import annotations

from bot.demo.signed_slack import SlackClient
from bot.demo.slack_emulator import SlackEmulator
from bot.runtime import Runtime
from tests.conftest import BYSTANDER, LEAD
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
