"""`warroom export INCIDENT --format … [-o FILE]`: by id or channel name, to a file or stdout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from bot.cli import main
from models import make_engine, make_session_factory
from tests.fixtures_exports import SeededIncident, seed_incident

WARROOM = Path(sys.executable).with_name("warroom")


@pytest.fixture
def sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(database_url)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def seeded(
    sessions: sessionmaker[Session], database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> SeededIncident:
    """An incident, and an environment pointing the CLI at its database (no Slack token: cached names)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", database_url)
    for name in ("SLACK_BOT_TOKEN", "WARROOM_PLAN", "SLACK_APP_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return seed_incident(sessions)


def test_export_by_id_to_a_file(
    seeded: SeededIncident, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "export.json"
    assert main(["export", str(seeded.id), "--format", "json", "-o", str(out)]) == 0

    document = json.loads(out.read_text())
    assert [event["id"] for event in document["timeline"]] == seeded.event_ids
    assert document["incident"]["opened_by"] == {
        "id": "ULEAD01",
        "name": "Lena Lead",
    }  # from the SlackUser cache
    assert (
        document["metrics"]["time_to_first_acknowledgement"]["by"]["name"] == "UMONITOR1"
    )  # not cached: the id
    assert f"wrote {out}" in capsys.readouterr().out


def test_export_by_channel_name_to_stdout(seeded: SeededIncident, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", "#" + seeded.channel_name, "--format", "csv"]) == 0

    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "id,at_utc,at_local,kind,actor_id,actor_name,text,data"
    assert lines[1].startswith(f"{seeded.event_ids[0]},2024-05-01T09:00:00+00:00,")


def test_unknown_incident_is_one_line_and_exit_2(
    seeded: SeededIncident, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["export", "crisis-nope", "--format", "md"]) == 2
    assert main(["export", "999", "--format", "md"]) == 2

    err = capsys.readouterr().err.strip().splitlines()
    hint = "give its number or its channel name (like crisis-20240501-flights-delayed)"
    assert err == [f"warroom: no incident {ref!r}: {hint}" for ref in ("crisis-nope", "999")]


def test_unknown_format_is_refused_by_the_parser(
    seeded: SeededIncident, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["export", str(seeded.id), "--format", "pdf"])
    assert exited.value.code == 2
    assert "invalid choice: 'pdf'" in capsys.readouterr().err


def test_export_as_a_real_process(seeded: SeededIncident, database_url: str, tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("SLACK_", "WARROOM_"))}
    env["DATABASE_URL"] = database_url
    result = subprocess.run(
        [str(WARROOM), "export", seeded.channel_name, "--format", "html"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("<!DOCTYPE html>") and result.stdout.rstrip().endswith("</html>")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in result.stdout and "<script" not in result.stdout
