"""The CSV export: one row per timeline event, safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

from bot.exports.report import Clock, TimelineRow

CHUNK_ROWS = 1000
COLUMNS = ("id", "at_utc", "at_local", "kind", "actor_id", "actor_name", "text", "data")
# Cells a spreadsheet would run as a formula (OWASP "CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(cell: str) -> str:
    """Prefix a formula-looking cell with `'` so spreadsheets show it as text."""
    return "'" + cell if cell.startswith(FORMULA_STARTS) else cell


def render_csv(
    report: dict[str, Any], rows: Iterator[TimelineRow], clock: Clock, names: dict[str, str]
) -> Iterator[str]:
    """Yield the CSV (header row, then one row per event) in chunks."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for count, row in enumerate(rows, 1):
        data = json.dumps(row.data, ensure_ascii=False, sort_keys=True) if row.data else ""
        cells = (
            str(row.id),
            clock.iso(row.at) or "",
            clock.iso_local(row.at) or "",
            row.kind,
            row.actor_id or "",
            row.actor_name or "",
            row.text,
            data,
        )
        writer.writerow([neutralise(cell) for cell in cells])
        if count % CHUNK_ROWS == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    # After the events, one row per row or item of each feature section (`kind` is the section's key).
    for section in report["sections"]:
        for row in section.rows:
            record = dict(zip(section.columns, row, strict=True))
            text = " · ".join(cell for cell in row if cell)
            data = json.dumps(record, ensure_ascii=False, sort_keys=True)
            writer.writerow([neutralise(cell) for cell in ("", "", "", section.key, "", "", text, data)])
        for item in section.items:
            writer.writerow([neutralise(cell) for cell in ("", "", "", section.key, "", "", item, "")])
    yield buffer.getvalue()
