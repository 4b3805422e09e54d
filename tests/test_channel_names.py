"""Pure logic of the lifecycle: channel names, the open request key, `/crisis open` arguments, the topic."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.crisis.channel_names import CHANNEL_NAME_MAX, channel_name, normalise_title, open_request_key, slugify
from bot.crisis.incidents import IncidentError, IncidentSnapshot, choose_severity, parse_open_args, validate_open
from bot.crisis.roles import RoleHolders
from handlers.render.incident import format_duration, purpose_text, topic_text
from tests.conftest import make_test_plan

SLACK_NAME = re.compile(r"^[a-z0-9_-]{1,80}$")
DAY = date(2025, 3, 7)
PLAYBOOKS = ("outage", "misquote", "safety")


def test_slug_is_lowercase_words_joined_by_hyphens() -> None:
    assert slugify("Flights delayed at LHR!") == "flights-delayed-at-lhr"
    assert slugify("  Crème brûlée — recall  ") == "creme-brulee-recall"
    assert slugify('CEO\'s "quote" (fake?)') == "ceo-s-quote-fake"


def test_slug_of_nothing_usable_is_a_placeholder() -> None:
    assert slugify("!!! ???") == "incident"
    assert slugify("日本語") == "incident"


def test_long_slug_is_cut_on_a_word() -> None:
    slug = slugify("the quick brown fox jumps over the lazy dog", 20)
    assert slug == "the-quick-brown-fox"
    assert len(slug) <= 20


def test_channel_name_has_prefix_day_and_slug() -> None:
    assert channel_name("crisis", DAY, "Flights delayed") == "crisis-20250307-flights-delayed"
    assert channel_name("crisis", DAY, "Flights delayed", 2) == "crisis-20250307-flights-delayed-2"


def test_long_titles_keep_the_suffix_within_80_characters() -> None:
    title = "a very long title " * 10
    for attempt in (1, 2, 17):
        name = channel_name("war_room-comms-team", DAY, title, attempt)
        assert len(name) <= CHANNEL_NAME_MAX
        assert SLACK_NAME.match(name)
        if attempt > 1:
            assert name.endswith(f"-{attempt}")


@given(st.text(max_size=300), st.integers(min_value=1, max_value=999))
def test_every_title_gives_a_valid_slack_name(title: str, attempt: int) -> None:
    name = channel_name("crisis", DAY, title, attempt)
    assert SLACK_NAME.match(name), name
    assert name.startswith("crisis-20250307-")
    assert name.endswith(f"-{attempt}") or attempt == 1


def test_same_request_same_key_whatever_the_spacing_or_case() -> None:
    key = open_request_key("U1", "Flights  delayed ", DAY)
    assert key == open_request_key("U1", "flights delayed", DAY)
    assert key != open_request_key("U2", "flights delayed", DAY)
    assert key != open_request_key("U1", "flights delayed", date(2025, 3, 8))
    assert key != open_request_key("U1", "flights cancelled", DAY)
    assert len(key) <= 120
    assert normalise_title(" A\tB ") == "a b"


@pytest.mark.parametrize(
    ("text", "severity", "playbook", "title"),
    [
        ("sev2 outage Flights delayed", "sev2", "outage", "Flights delayed"),
        ("outage SEV1 Flights delayed", "sev1", "outage", "Flights delayed"),
        ("sev4 Minor grumbling", "sev4", None, "Minor grumbling"),
        ("misquote CEO quote is fake", None, "misquote", "CEO quote is fake"),
        ("Flights   delayed", None, None, "Flights delayed"),
        ("sev2", "sev2", None, ""),
        ("", None, None, ""),
        ("sev2 sev3 title", "sev2", None, "sev3 title"),
    ],
)
def test_open_arguments(text: str, severity: str | None, playbook: str | None, title: str) -> None:
    parsed = parse_open_args(text, PLAYBOOKS)
    assert (parsed.severity, parsed.playbook, parsed.title) == (severity, playbook, title)


def test_open_arguments_name_a_wrong_severity() -> None:
    with pytest.raises(IncidentError, match="`sev5` is not a severity"):
        parse_open_args("sev5 Flights delayed", PLAYBOOKS)


def test_open_arguments_refuse_a_title_longer_than_a_header() -> None:
    with pytest.raises(IncidentError, match="keep it to 150"):
        parse_open_args("x" * 151, PLAYBOOKS)


def test_severity_defaults_to_the_playbook_then_sev3() -> None:
    plan = make_test_plan()
    assert choose_severity(plan, "sev4", "safety") == "sev4"
    assert choose_severity(plan, None, "safety") == "sev1"
    assert choose_severity(plan, None, None) == "sev3"


def test_form_problems_are_per_field() -> None:
    plan = make_test_plan()
    assert validate_open(plan, "  ", None, None) == {"title": "Give the incident a title."}
    problems = validate_open(plan, "ok", "sev9", "nope", "d" * 2001)
    assert set(problems) == {"severity", "playbook", "description"}
    assert validate_open(plan, "Flights delayed", "sev2", "outage", "") == {}


def _snapshot(**changes: object) -> IncidentSnapshot:
    values: dict[str, object] = {
        "id": 1,
        "title": "Flights delayed",
        "description": "",
        "severity": "sev2",
        "severity_label": "Major",
        "playbook": "outage",
        "playbook_title": "Service outage",
        "playbook_description": "",
        "checklist": (),
        "status": "open",
        "open_error": None,
        "channel_id": "C1",
        "channel_name": "crisis-x",
        "brief_ts": None,
        "opened_by": "U1",
        "opened_at": datetime(2025, 3, 7, tzinfo=UTC),
        "resolved_at": None,
        "resolved_by": None,
        "summary": None,
        "next_digest_at": None,
        "roles": (RoleHolders("lead", "Incident lead", "", ("ULEAD01",)),),
    }
    values.update(changes)
    return IncidentSnapshot(**values)  # type: ignore[arg-type]


def test_topic_shows_severity_lead_and_status() -> None:
    assert topic_text(_snapshot()) == "SEV2 Major · Lead: <@ULEAD01> · Status: open"
    assert topic_text(_snapshot(status="opening")).endswith("Status: open")
    assert (
        topic_text(_snapshot(status="resolved", roles=()))
        == "SEV2 Major · Lead: nobody yet · Status: resolved"
    )


def test_topic_and_purpose_stay_within_250_and_cannot_ping() -> None:
    purpose = purpose_text(_snapshot(title="<!channel> " + "x" * 400))
    assert len(purpose) <= 250
    assert "<!channel>" not in purpose
    assert purpose.startswith("&lt;!channel&gt;")
    assert len(topic_text(_snapshot(severity_label="L" * 300))) <= 250


def test_durations_read_naturally() -> None:
    from datetime import timedelta

    assert format_duration(timedelta(seconds=30)) == "under a minute"
    assert format_duration(timedelta(minutes=12)) == "12m"
    assert format_duration(timedelta(hours=2, minutes=5)) == "2h 05m"
    assert format_duration(timedelta(days=3, hours=4, minutes=59)) == "3d 4h"
