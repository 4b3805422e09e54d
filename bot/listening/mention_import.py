"""`warroom mentions import FILE.csv` and `warroom mentions score FILE.csv`.

Import takes the same fields as POST /mentions, as CSV columns (a header row names them; extra
columns are ignored; empty cells are missing values). Every row is validated first; if any is bad,
each problem is reported with the line its record starts on and nothing is imported. Otherwise all
rows go in one transaction, scored and inserted in batches, with a progress bar on stderr.
"""

from __future__ import annotations

import csv
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TextIO

from sqlalchemy.exc import OperationalError, ProgrammingError

from bot.crisis.plan import Plan
from bot.infra.errors import CommandError
from bot.infra.settings import Settings
from bot.listening.escalations import queue_escalations
from bot.listening.mentions import REQUIRED_FIELDS, NewMention, store_mentions, validate_mention
from bot.listening.sentiment import score_texts
from models import make_engine, make_session_factory, transaction, utcnow

MAX_REPORTED_ERRORS = 20
SCORE_CHUNK = 1000
EXIT_BAD_INPUT = 2


def _open(path: Path) -> TextIO:
    try:
        # utf-8-sig: spreadsheets often save a byte-order mark before the header.
        return path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise CommandError(f"{path}: cannot read the file ({exc.strerror})") from None


def _records(path: Path, handle: TextIO) -> Iterator[tuple[int, list[str]]]:
    """(starting line, cells) of every non-blank CSV record; the header is the first."""
    reader = csv.reader(handle)
    try:
        while True:
            start = reader.line_num + 1
            try:
                row = next(reader)
            except StopIteration:
                return
            if row and any(cell.strip() for cell in row):
                yield start, row
    except csv.Error as exc:
        raise CommandError(f"{path}: line {reader.line_num}: not valid CSV ({exc})") from None
    except UnicodeDecodeError:
        raise CommandError(f"{path}: line {_first_undecodable_line(path)}: not UTF-8 text") from None


def _first_undecodable_line(path: Path) -> int:
    """The physical line holding the first byte that is not UTF-8.

    The text layer decodes the file in large chunks, so the CSV reader's line number is wherever the
    chunk began; a newline byte never occurs inside a UTF-8 sequence, so lines can be checked one by one.
    """
    with path.open("rb") as raw:
        for number, line in enumerate(raw, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                return number
    return 1


class ProgressBar:
    """A one-line text progress bar on stderr, redrawn at most ten times a second (imports, drills)."""

    def __init__(self, total: int, stream: IO[str] | None = None, width: int = 30,
                 label: str = "importing", ends_at_total: bool = True) -> None:
        self.total, self.stream, self.width, self.label = total, stream or sys.stderr, width, label
        self.ends_at_total = ends_at_total  # else the line ends at `finish()` (a drill goes on after its posts)
        self._drawn_at = 0.0
        self._width_drawn = 0

    def __call__(self, done: int, note: str | Callable[[], str] = "", *, force: bool = False) -> None:
        now = time.monotonic()
        if self._drawn_at < 0 or (not force and done < self.total and now - self._drawn_at < 0.1):
            return
        self._drawn_at = now
        note = note() if callable(note) else note  # worked out only when the line is redrawn
        filled = self.width * min(done, self.total) // max(self.total, 1)
        bar = "#" * filled + " " * (self.width - filled)
        line = f"{self.label} [{bar}] {done:,}/{self.total:,}{note}"
        # Padded, so a shorter line fully covers the one before it.
        self.stream.write("\r" + line.ljust(self._width_drawn))
        self._width_drawn = len(line)
        self.stream.flush()
        if done >= self.total and self.ends_at_total:
            self.finish()

    def finish(self) -> None:
        """End the line (once)."""
        if self._drawn_at >= 0:
            self._drawn_at = -1.0
            self.stream.write("\n")
            self.stream.flush()


def read_mentions(path: Path, defaults: dict[str, str] | None = None) -> tuple[list[NewMention], list[str]]:
    """Validate every row of a mentions CSV: (mentions, problems as "line N: field: message").

    `defaults` fill a column the file lacks, or a row's empty cell (a drill's `--platform x`).
    """
    defaults = defaults or {}
    with _open(path) as handle:
        records = _records(path, handle)
        first = next(records, None)
        if first is None:
            raise CommandError(f"{path}: the file is empty; it needs a header: {', '.join(REQUIRED_FIELDS)}")
        _, header = first
        columns = [name.strip().lower() for name in header]
        missing = [name for name in REQUIRED_FIELDS if name not in columns and name not in defaults]
        if missing:
            raise CommandError(f"{path}: missing column(s) {', '.join(missing)}; "
                               f"required: {', '.join(REQUIRED_FIELDS)}")
        mentions: list[NewMention] = []
        problems: list[str] = []
        for line, cells in records:
            if len(cells) > len(columns):
                problems.append(f"line {line}: has {len(cells)} cells but the header has {len(columns)}")
                continue
            item = dict(zip(columns, cells, strict=False))
            for name, value in defaults.items():
                if not item.get(name, "").strip():
                    item[name] = value
            mention, errors = validate_mention(item, line, lenient=True)
            problems.extend(f"line {line}: {error.field}: {error.message}" for error in errors)
            if mention is not None:
                mentions.append(mention)
    return mentions, problems


def import_csv(settings: Settings, path: Path, plan: Plan | None = None) -> int:
    """Import a mentions CSV: all rows or none. Exit code 0, or 2 after printing what is wrong."""
    mentions, problems = read_mentions(path)
    if problems:
        for problem in problems[:MAX_REPORTED_ERRORS]:
            print(f"warroom: {path}: {problem}", file=sys.stderr)
        if len(problems) > MAX_REPORTED_ERRORS:
            more = len(problems) - MAX_REPORTED_ERRORS
            print(f"warroom: {path}: …and {more} more problems", file=sys.stderr)
        print(f"warroom: {path}: nothing was imported; fix the rows above and run the import again",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    engine = make_engine(settings.database_url)
    try:
        with transaction(make_session_factory(engine)) as session:
            result = store_mentions(session, mentions, source="csv", progress=ProgressBar(len(mentions)))
            if plan is not None:
                queue_escalations(session, plan, mentions, utcnow())
    except (OperationalError, ProgrammingError) as exc:
        why = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        raise CommandError(f"DATABASE_URL: cannot store mentions ({why}); try `warroom db upgrade`") from None
    finally:
        engine.dispose()
    print(f"{path}: imported {result.accepted:,} mentions ({result.duplicates:,} already stored or repeated)")
    return 0


def score_csv(path: Path, out: TextIO) -> int:
    """Write `label,score` for every row of a CSV's `text` column. Exit code 0, or 2 after one line."""
    with _open(path) as handle:
        records = _records(path, handle)
        first = next(records, None)
        columns = [name.strip().lower() for name in first[1]] if first else []
        if "text" not in columns:
            print(f"warroom: {path}: no `text` column (the header has: {', '.join(columns) or 'nothing'})",
                  file=sys.stderr)
            return EXIT_BAD_INPUT
        position = columns.index("text")
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["label", "score"])
        chunk: list[str] = []

        def flush() -> None:
            writer.writerows((s.label, f"{s.score:.4f}") for s in score_texts(chunk))
            chunk.clear()

        for _, cells in records:
            chunk.append(cells[position] if position < len(cells) else "")
            if len(chunk) >= SCORE_CHUNK:
                flush()
        flush()
    return 0
