"""`warroom mentions import` and `warroom mentions score`, through the CLI entry point."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select

from bot.cli import main
from bot.infra.settings import normalise_database_url
from models import Mention
from tests.conftest import SHARED_DATA

GOOD = (
    "\ufeffplatform,id,text,created_at,author,author_followers,likes,shares,replies,url,lang,extra\r\n"
    'twitter,1,"Acme Air lost my bag, again",2024-05-01T12:00:00Z,ann,1200,3,1,0,https://x.example/1,en,x\r\n'
    "\r\n"
    'twitter,2,"Line one\r\nline two: thanks @AcmeAir!",2024-05-01T13:00:00+01:00,bob,"1,500",,,,,,\r\n'
    "mastodon,3,Boarding now,2024-05-01T12:05:00Z,,,,,,,,\r\n"
    "twitter,1,Acme Air lost my bag (repeat),2024-05-01T12:00:00Z,ann,1200,3,1,0,,,\r\n"
)


@pytest.fixture
def env(database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("DATABASE_URL", database_url)
    for name in ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "WARROOM_PLAN"):
        monkeypatch.delenv(name, raising=False)
    return database_url


def external_ids(url: str) -> list[tuple[Any, ...]]:
    engine = create_engine(normalise_database_url(url))
    try:
        with engine.connect() as connection:
            query = select(
                Mention.platform, Mention.external_id, Mention.author_followers, Mention.created_at
            )
            return [tuple(row) for row in connection.execute(query.order_by(Mention.external_id))]
    finally:
        engine.dispose()


def test_import_stores_every_row_once_with_a_progress_bar_and_a_summary(
    env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "mentions.csv"
    path.write_bytes(GOOD.encode())
    assert main(["mentions", "import", str(path)]) == 0
    out, err = capsys.readouterr()
    assert "imported 3 mentions (1 already stored or repeated)" in out
    assert "importing [" in err and "4/4" in err
    rows = external_ids(env)
    assert [(platform, ext, followers) for platform, ext, followers, _ in rows] == [
        ("twitter", "1", 1200),
        ("twitter", "2", 1500),
        ("mastodon", "3", 0),
    ]
    assert rows[1][3].replace(tzinfo=None).isoformat() == "2024-05-01T12:00:00"

    # Importing the same file again stores nothing new.
    assert main(["mentions", "import", str(path)]) == 0
    assert "imported 0 mentions (4 already stored or repeated)" in capsys.readouterr().out


def test_bad_rows_are_reported_by_starting_line_and_nothing_is_imported(
    env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(
        "platform,id,text,created_at,likes\n"
        'twitter,1,"a post\nover three\nlines",2024-05-01T12:00:00Z,1\n'  # lines 2-4: fine
        "twitter,2,no offset,2024-05-01T12:00:00,2\n"  # line 5
        "twitter,,,2024-05-01T12:00:00Z,lots\n"  # line 6
        "twitter,4,fine,2024-05-01T12:00:00Z,4\n",
        encoding="utf-8",
    )
    assert main(["mentions", "import", str(path)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert (
        f"warroom: {path}: line 5: created_at: has no UTC offset; add Z or +hh:mm (like 2024-05-01T12:30:00Z)"
        in err
    )
    assert f"warroom: {path}: line 6: id: is required" in err
    assert f"warroom: {path}: line 6: text: is required" in err
    assert f"warroom: {path}: line 6: likes: must be a whole number" in err
    assert "nothing was imported" in err[-1]
    assert external_ids(env) == []


def test_nul_characters_in_any_cell_are_reported_and_nothing_is_imported(
    env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # PostgreSQL text cannot hold NUL; before the check this import died with a traceback there.
    path = tmp_path / "nul.csv"
    path.write_text(
        "platform,id,text,created_at,author,url,lang\n"
        "twitter,1,fine,2024-05-01T12:00:00Z,ann,https://x.example/1,en\n"  # line 2
        "twitter,2,lost\x00bag,2024-05-01T12:00:00Z,bob,,\n"  # line 3
        "twitter,3,fine,2024-05-01T12:00:00Z,\x00,https://x.example/\x00,e\x00n\n"  # line 4
        "twit\x00ter,4\x00,fine,2024-05-01T12:00:00Z\x00,,,\n",  # line 5
        encoding="utf-8",
    )
    assert main(["mentions", "import", str(path)]) == 2
    err = capsys.readouterr().err.splitlines()
    nul = "must not contain a NUL character (\\u0000)"
    assert err[:-1] == [f"warroom: {path}: line {line}: {field}: {nul}" for line, field in [
        (3, "text"), (4, "url"), (4, "author"), (4, "lang"), (5, "platform"), (5, "id"), (5, "created_at"),
    ]], err
    assert "nothing was imported" in err[-1]
    assert external_ids(env) == []


def test_text_that_is_not_utf8_is_one_line(env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # A surrogate written as UTF-8 bytes (CESU-8, what some exporters emit) is not UTF-8: refused, not crashed.
    path = tmp_path / "cesu.csv"
    path.write_bytes(b"platform,id,text,created_at\ntwitter,1,fine,2024-05-01T12:00:00Z\n"
                     b"twitter,2,bag \xed\xa0\xbd lost,2024-05-01T12:00:00Z\n")
    assert main(["mentions", "import", str(path)]) == 2
    assert capsys.readouterr().err.strip() == f"warroom: {path}: line 3: not UTF-8 text"
    assert external_ids(env) == []


def test_missing_columns_and_missing_file_are_one_line(
    env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "cols.csv"
    path.write_text("platform,text\ntwitter,hi\n", encoding="utf-8")
    assert main(["mentions", "import", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"warroom: {path}: missing column(s) id, created_at; required: platform, id, text, created_at"
    ]
    assert main(["mentions", "import", str(tmp_path / "nope.csv")]) == 2
    assert "cannot read the file" in capsys.readouterr().err


def test_score_writes_label_and_score_per_row(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = SHARED_DATA / "sanders_twitter_sentiment.csv"
    with source.open(newline="", encoding="utf-8") as handle:
        count = sum(1 for _ in csv.DictReader(handle))
    assert main(["mentions", "score", str(source)]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0] == ["label", "score"]
    assert len(rows) == count + 1
    for label, score in rows[1:]:
        assert label in ("negative", "neutral", "positive") and -1 <= float(score) <= 1


def test_score_without_a_text_column_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "posts.csv"
    path.write_text("id,body\n1,hello\n", encoding="utf-8")
    assert main(["mentions", "score", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip().splitlines() == [
        f"warroom: {path}: no `text` column (the header has: id, body)"
    ]
