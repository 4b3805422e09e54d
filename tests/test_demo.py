"""`warroom demo`: a whole crisis offline through the real app, ending in four exports."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import jsonschema

from bot.demo.script import find_button, plain

WARROOM = Path(sys.executable).with_name("warroom")
SCHEMA = json.loads((Path(__file__).parents[1] / "bot" / "export.schema.json").read_text())


def test_demo_runs_a_crisis_and_writes_four_exports(tmp_path: Path) -> None:
    # Settings the demo must ignore: it builds its own and never reaches a real Slack or LLM.
    env = dict(
        os.environ,
        OPENAI_API_KEY="sk-must-not-be-used",
        SLACK_API_URL="http://127.0.0.1:9/api/",
        DATABASE_URL=f"sqlite:///{tmp_path / 'not-this.db'}",
        SLACK_BOT_TOKEN="xoxb-not-this",
    )
    started = time.monotonic()
    result = subprocess.run(
        [str(WARROOM), "demo", "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    elapsed = time.monotonic() - started

    assert result.returncode == 0, result.stderr[-3000:]
    assert elapsed < 60
    files = {path.suffix: path for path in (tmp_path / "out").iterdir()}
    assert sorted(files) == [".csv", ".html", ".json", ".md"]
    assert not (tmp_path / "not-this.db").exists()

    document = json.loads(files[".json"].read_text())
    jsonschema.validate(document, SCHEMA, cls=jsonschema.Draft202012Validator)
    kinds = [event["kind"] for event in document["timeline"]]
    for kind in (
        "incident.opened",
        "fact.added",
        "digest.posted",
        "rumour.tracked",
        "draft.approved",
        "draft.rejected",
        "incident.resolved",
        "export.uploaded",
    ):
        assert kind in kinds
    assert document["metrics"]["drafts"]["approved"] == 1 and document["metrics"]["drafts"]["rejected"] == 1
    mentions = document["mentions"]
    assert mentions["before"]["count"] > 50  # the start of the wave that set the spike alert off
    assert document["incident"]["lead"]["name"] == "Priya Shah"
    # A drill of the bundled stream: the crisis's own times and rates, in simulated minutes.
    assert document["incident"]["drill"] is True
    metrics = document["metrics"]
    assert 10 * 60 <= metrics["time_to_first_approved_statement"]["seconds"] <= 60 * 60
    assert 60 * 60 <= metrics["time_to_resolve"]["seconds"] <= 3 * 60 * 60
    # Mentions per simulated hour: a wave that grows after the open, not posts a second apart.
    assert 20 < mentions["before"]["per_hour"] < mentions["during"]["per_hour"] < 500
    rows = list(csv.DictReader(files[".csv"].open(newline="")))
    # Every timeline event, in order; the feature sections' rows (no id) come after them.
    events = [row for row in rows if row["id"]]
    assert [int(row["id"]) for row in events] == [event["id"] for event in document["timeline"]]
    assert all(not row["id"] for row in rows[len(events):])
    assert {row["kind"] for row in rows if not row["id"]} <= set(document.get("sections", {}))
    assert "data:image/png;base64," in files[".html"].read_text()
    assert "## Post-mortem" in files[".md"].read_text()

    transcript = result.stdout
    assert "#crisis-drill-alerts" in transcript and "Mention spike — Acme Air" in transcript
    headers = [line for line in transcript.splitlines() if line.startswith("  #")]
    assert headers and all(line.endswith("[DRILL]:") for line in headers)  # every message says DRILL
    assert "DRILL scorecard — Check-in and app outage delaying flights" in transcript
    assert "› Priya Shah types /crisis open sev2 outage" in transcript
    assert "[Approve] [Edit] [Regenerate] [Reject]" in transcript
    assert "Rejected* by @Tom Becker" in transcript
    assert transcript.count("wrote ") == 4


def test_transcript_rendering_of_mrkdwn() -> None:
    names = {"U1": "Priya Shah"}
    assert (
        plain(
            "<@U1> said &lt;hi&gt; in <#C1|crisis-x> <https://x.example|the post> <!here> :memo:",
            names,
            {"C1": "crisis-x"},
        )
        == "@Priya Shah said <hi> in #crisis-x the post @here 📝"
    )
    message = {
        "blocks": [
            {
                "type": "actions",
                "block_id": "b",
                "elements": [
                    {
                        "type": "button",
                        "action_id": "go",
                        "value": "7",
                        "text": {"type": "plain_text", "text": "Go"},
                    }
                ],
            }
        ]
    }
    assert find_button([message], "go", "7")[1] == "b"
