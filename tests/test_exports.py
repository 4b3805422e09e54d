"""The timeline export: every format against the database, hostile text made inert, the JSON schema,
names from Slack and its cache, and `/crisis export` uploading through the emulator."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.crisis import timeline
from bot.crisis.plan import Plan
from bot.demo.signed_slack import SlackClient
from bot.demo.slack_emulator import SlackEmulator
from bot.exports import FORMATS, incident_names, stream_export
from bot.exports.as_csv import neutralise
from bot.exports.names import resolve_names, users_info_lookup
from models import Incident, SlackUser, TimelineEvent, make_engine, make_session_factory, transaction
from models.incidents import OPEN
from tests.conftest import APPROVER, BOT_TOKEN, DRAFTER, LEAD, MONITOR
from tests.fixtures_exports import (
    HOSTILE_FORMULA,
    HOSTILE_PING,
    HOSTILE_SCRIPT,
    SeededIncident,
    seed_incident,
)

SCHEMA = json.loads((Path(__file__).parents[1] / "bot" / "export.schema.json").read_text())
NOW = datetime(2024, 5, 1, 14, 0, tzinfo=UTC)
NAMES = {LEAD: "Lena Lead", APPROVER: "Abe Approver", DRAFTER: "Dee Drafter", MONITOR: "Mo Monitor"}


@pytest.fixture
def sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(database_url)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def seeded(sessions: sessionmaker[Session]) -> SeededIncident:
    return seed_incident(sessions)


def export_text(sessions: sessionmaker[Session], incident_id: int, fmt: str, plan: Plan) -> str:
    with sessions() as session:
        return "".join(stream_export(session, incident_id, fmt, plan, NAMES, now=NOW))


def db_event_ids(sessions: sessionmaker[Session], incident_id: int) -> list[int]:
    with sessions() as session:
        return list(
            session.scalars(
                select(TimelineEvent.id)
                .where(TimelineEvent.incident_id == incident_id)
                .order_by(TimelineEvent.at, TimelineEvent.id)
            )
        )


def test_json_export_matches_the_database_and_its_schema(
    sessions: sessionmaker[Session], seeded: SeededIncident, plan: Plan
) -> None:
    document = json.loads(export_text(sessions, seeded.id, "json", plan))

    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    jsonschema.validate(document, SCHEMA, cls=jsonschema.Draft202012Validator)
    assert [event["id"] for event in document["timeline"]] == db_event_ids(sessions, seeded.id)
    with sessions() as session:
        stored = {
            e.id: e
            for e in session.scalars(select(TimelineEvent).where(TimelineEvent.incident_id == seeded.id))
        }
    for event in document["timeline"]:
        row = stored[event["id"]]
        assert (event["kind"], event["text"], event["data"]) == (row.kind, row.text, row.data)
        assert datetime.fromisoformat(event["at"]) == row.at
        assert (event["actor"] or {}).get("id") == row.actor
    assert document["timeline"][0]["at_local"] == "2024-05-01T10:00:00+01:00"  # Europe/London, BST
    # JSON is data: hostile text is kept exactly, for the consumer to escape.
    assert document["incident"]["title"] == f"Flights delayed {HOSTILE_SCRIPT}"


def test_json_export_metrics_and_post_mortem_seeds(
    sessions: sessionmaker[Session], seeded: SeededIncident, plan: Plan
) -> None:
    document = json.loads(export_text(sessions, seeded.id, "json", plan))
    metrics = document["metrics"]

    assert metrics["time_to_first_acknowledgement"]["seconds"] == 4 * 60
    assert metrics["time_to_first_acknowledgement"]["by"] == {"id": MONITOR, "name": "Mo Monitor"}
    assert metrics["time_to_first_approved_statement"]["seconds"] == 40 * 60
    assert metrics["time_to_resolve"]["seconds"] == 150 * 60
    assert metrics["drafts"] | {} == {
        "requested": 2,
        "approved": 1,
        "rejected": 1,
        "pending": 0,
        "failed": 0,
        "superseded": 0,
    }
    assert metrics["rumours"]["refuted"] == 1 and metrics["rumours"]["open"] == 1
    mentions = document["mentions"]
    assert [mentions[w]["count"] for w in ("before", "during", "after")] == [10, 25, 5]
    assert mentions["during"]["negative_share"] == 0.48
    assert sum(b["negative"] + b["neutral"] + b["positive"] for b in mentions["series"]) == 40
    assert [step["severity"] for step in document["severity_history"]] == ["sev3", "sev2"]
    assert document["incident"]["lead"]["id"] == LEAD
    assert [(r["role"], r["user"]["id"], r["ended_at"] is not None) for r in document["roles"]] == [
        ("lead", LEAD, False),
        ("drafter", MONITOR, True),
        ("drafter", DRAFTER, False),
    ]
    rejected = next(d for d in document["drafts"] if d["status"] == "rejected")
    assert rejected["decided_by"]["name"] == "Abe Approver" and rejected["reason"].startswith("too cold")
    approved = next(d for d in document["drafts"] if d["status"] == "approved")
    assert approved["final_text"] == "We're sorry, flights resume at noon."
    post_mortem = document["post_mortem"]
    assert any("rejected by Abe Approver" in line for line in post_mortem["to_improve"])
    assert any("Pilots on strike" in line for line in post_mortem["action_items"])
    assert any("40 min" in line for line in post_mortem["went_well"])


def test_acknowledgement_ignores_the_bot_and_the_open_steps(
    sessions: sessionmaker[Session], plan: Plan
) -> None:
    with transaction(sessions) as session:
        incident = Incident(
            title="Quiet",
            severity="sev4",
            status=OPEN,
            opened_by=LEAD,
            opened_at=datetime(2024, 5, 1, 9, 0, tzinfo=UTC),
        )
        session.add(incident)
        session.flush()
        for minute, kind, actor in (
            (0, timeline.INCIDENT_OPENED, LEAD),
            (1, timeline.INCIDENT_READY, None),
            (5, timeline.DIGEST_POSTED, None),
            (70, timeline.DECISION_LOGGED, DRAFTER),
        ):
            timeline.record_event(
                session,
                incident.id,
                kind,
                "x",
                actor=actor,
                at=datetime(2024, 5, 1, 9, minute % 60, tzinfo=UTC).replace(hour=9 + minute // 60),
            )
        incident_id = incident.id
    document = json.loads(export_text(sessions, incident_id, "json", plan))

    assert document["metrics"]["time_to_first_acknowledgement"]["seconds"] == 70 * 60
    assert document["metrics"]["time_to_first_approved_statement"] is None
    assert document["mentions"]["after"] is None
    assert any(
        "First acknowledgement took 1 h 10 min" in line for line in document["post_mortem"]["to_improve"]
    )
    jsonschema.validate(document, SCHEMA, cls=jsonschema.Draft202012Validator)


def test_markdown_export_has_every_event_in_order_and_no_live_markup(
    sessions: sessionmaker[Session], seeded: SeededIncident, plan: Plan
) -> None:
    text = export_text(sessions, seeded.id, "md", plan)

    timeline_part = text.split("## Timeline", 1)[1].split("## Post-mortem", 1)[0]
    ids = [int(match) for match in re.findall(r"^\| (\d+) \|", timeline_part, flags=re.MULTILINE)]
    assert ids == db_event_ids(sessions, seeded.id)
    assert "<script" not in text and "<!channel>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text and "&lt;!channel&gt;" in text
    assert "Back to normal<br>all good" in timeline_part  # a newline never breaks the table
    assert (
        "| 2024-05-01 09:04:00 UTC | 2024-05-01 10:04:00 BST | Mo Monitor | `fact.added` |" in timeline_part
    )
    for heading in (
        "## Metrics",
        "### What went well",
        "### What to improve",
        "### Action items",
        "## Drafts",
        "## Rumours",
        "## Roles",
        "## Decisions",
        "## Facts",
        "## Key messages",
    ):
        assert heading in text
    assert "We are sorry @Lena Lead" in text  # <@U…> shown by name


def test_html_export_is_self_contained_escaped_and_complete(
    sessions: sessionmaker[Session], seeded: SeededIncident, plan: Plan
) -> None:
    page = export_text(sessions, seeded.id, "html", plan)

    ids = [int(match) for match in re.findall(r"<tr id=e(\d+)>", page)]
    assert ids == db_event_ids(sessions, seeded.id)
    assert "<script" not in page and "<!channel>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "&lt;!channel&gt; everyone look" in page
    assert re.search(r'<img alt="[^"]*" src="data:image/png;base64,[A-Za-z0-9+/=]{500,}">', page)
    assert not re.search(r'(src|href)="(https?:)?//', page) and "<link" not in page
    assert page.rstrip().endswith("</html>")


def test_csv_export_has_one_row_per_event_and_neutralises_formulas(
    sessions: sessionmaker[Session], seeded: SeededIncident, plan: Plan
) -> None:
    rows = list(csv.DictReader(io.StringIO(export_text(sessions, seeded.id, "csv", plan), newline="")))

    assert [int(row["id"]) for row in rows] == db_event_ids(sessions, seeded.id)
    by_text = {row["kind"]: row["text"] for row in rows}
    assert by_text["draft.requested"] == "'" + HOSTILE_FORMULA
    assert by_text["draft.rejected"] == "'-too cold" and by_text["draft.approved"] == "'+approved"
    assert by_text["decision.logged"] == "'@Offer refunds"
    assert (
        by_text["rumour.tracked"] == HOSTILE_PING
        and by_text["incident.resolved"] == "Back to normal\nall good"
    )
    for row in rows:
        assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in row.values())
    assert neutralise("\tx") == "'\tx" and neutralise("\r=1") == "'\r=1" and neutralise("plain") == "plain"


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_exports_stream_in_chunks(sessions: sessionmaker[Session], plan: Plan, fmt: str) -> None:
    seeded = seed_incident(sessions, extra_events=2500)
    with sessions() as session:
        chunks = stream_export(session, seeded.id, fmt, plan, NAMES, now=NOW)
        assert isinstance(chunks, Iterator)
        parts = list(chunks)
    assert len(parts) >= 3  # 2,500 events leave in batches, never as one string
    text = "".join(parts)
    assert "update 2499" in text and "update 0" in text


def test_names_come_from_users_info_then_the_cache_and_fall_back_to_ids(
    sessions: sessionmaker[Session], seeded: SeededIncident, emulator: SlackEmulator
) -> None:
    from slack_sdk import WebClient

    client = WebClient(token=BOT_TOKEN, base_url=emulator.api_url)
    names = incident_names(sessions, seeded.id, users_info_lookup(client))
    assert names[LEAD] == "Lena Lead"  # from the cache: no call
    assert names[DRAFTER] == "Dee Drafter" and names[MONITOR] == "Mo Monitor"
    assert sorted(call.args["user"] for call in emulator.calls_to("users.info")) == [DRAFTER, MONITOR]
    with sessions() as session:
        assert (
            session.scalar(select(SlackUser.real_name).where(SlackUser.user_id == DRAFTER)) == "Dee Drafter"
        )
    emulator.clear_calls()
    assert incident_names(sessions, seeded.id, users_info_lookup(client))[MONITOR] == "Mo Monitor"
    assert emulator.calls_to("users.info") == []

    unreachable = WebClient(token=BOT_TOKEN, base_url="http://127.0.0.1:9/api/", timeout=2)
    with transaction(sessions) as session:
        assert resolve_names(session, ["UNKNOWN1", "UNKNOWN2", LEAD], users_info_lookup(unreachable)) == {
            "UNKNOWN1": "UNKNOWN1",
            "UNKNOWN2": "UNKNOWN2",
            LEAD: "Lena Lead",
        }


def test_crisis_export_uploads_the_file_and_logs_it(
    slack: SlackClient, emulator: SlackEmulator, runtime: object
) -> None:
    sessions = runtime.sessions  # type: ignore[attr-defined]
    channel_id = emulator.add_channel("crisis-20240501-flights-delayed", [LEAD, APPROVER])
    seeded = seed_incident(sessions)
    with transaction(sessions) as session:
        session.get(Incident, seeded.id).channel_id = channel_id  # type: ignore[union-attr]

    response = slack.command("export html", user_id=LEAD, channel_id=channel_id)
    assert response.status_code == 200
    uploaded = emulator.wait_for(lambda emu: emu.files)[0]

    assert uploaded["name"] == "crisis-20240501-flights-delayed-timeline.html"
    assert uploaded["channels"] == [channel_id] and f"<@{LEAD}>" in uploaded["initial_comment"]
    page = uploaded["bytes"].decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script" not in page
    assert "data:image/png;base64," in page
    assert emulator.errors == []
    logged = emulator.wait_for(lambda emu: _uploads(sessions, seeded.id))
    assert logged[0].actor == LEAD and logged[0].data["format"] == "html"
    assert logged[0].data["file_id"] == uploaded["id"] and logged[0].data["bytes"] == len(uploaded["bytes"])


def _uploads(sessions: sessionmaker[Session], incident_id: int) -> list[TimelineEvent]:
    with sessions() as session:
        return list(
            session.scalars(
                select(TimelineEvent).where(
                    TimelineEvent.incident_id == incident_id, TimelineEvent.kind == timeline.EXPORT_UPLOADED
                )
            )
        )


def test_crisis_export_with_a_bad_format_says_the_correct_form(
    slack: SlackClient, emulator: SlackEmulator, runtime: object
) -> None:
    sessions = runtime.sessions  # type: ignore[attr-defined]
    channel_id = emulator.add_channel("crisis-20240501-flights-delayed", [LEAD])
    seeded = seed_incident(sessions)
    with transaction(sessions) as session:
        session.get(Incident, seeded.id).channel_id = channel_id  # type: ignore[union-attr]

    slack.command("export pdf", user_id=LEAD, channel_id=channel_id)
    answer = emulator.wait_for(lambda emu: emu.ephemerals(user=LEAD))[0]

    assert "`pdf` is not an export format" in answer["text"]
    assert "/crisis export [md|html|json|csv]" in json.dumps(answer["blocks"])
    assert emulator.files == [] and _uploads(sessions, seeded.id) == []


def test_feature_sections_appear_in_every_format_escaped(
    sessions: sessionmaker[Session], seeded: SeededIncident, plan: Plan, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A feature's section (bot/exports/sections.py) reaches all four formats with its text inert."""
    from bot.exports import report
    from bot.exports.sections import Section, SectionContext

    def hostile_section(context: SectionContext) -> Section:
        return Section(
            key="checks",
            title="Checks",
            intro=f"For incident #{context.incident.id}",
            columns=("What", "When"),
            rows=((HOSTILE_SCRIPT, context.time_text(context.incident.opened_at)), ("=1+1", "—")),
            items=(f"{HOSTILE_PING} item",),
        )

    def nothing(context: SectionContext) -> None:
        return None

    monkeypatch.setattr(report, "SECTION_BUILDERS", (hostile_section, nothing))

    document = json.loads(export_text(sessions, seeded.id, "json", plan))
    jsonschema.validate(document, SCHEMA, cls=jsonschema.Draft202012Validator)
    assert document["sections"]["checks"]["rows"][0]["What"] == HOSTILE_SCRIPT
    assert document["sections"]["checks"]["items"] == [f"{HOSTILE_PING} item"]
    assert list(document["sections"]) == ["checks"]

    page = export_text(sessions, seeded.id, "html", plan)
    assert "<h2>Checks</h2>" in page and "<script" not in page and "<!channel>" not in page
    markdown = export_text(sessions, seeded.id, "md", plan)
    assert "## Checks" in markdown and "<script" not in markdown and "<!channel>" not in markdown
    rows = list(csv.DictReader(io.StringIO(export_text(sessions, seeded.id, "csv", plan), newline="")))
    checks = [row for row in rows if row["kind"] == "checks"]
    assert len(checks) == 3 and checks[1]["text"].startswith("'=1+1")
    for row in rows:
        assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in row.values())
