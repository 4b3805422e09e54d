"""The JSON export: the report, then the timeline one event per line (schema: bot/export.schema.json)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from bot.exports.report import Clock, TimelineRow

CHUNK_ROWS = 1000


def timeline_entry(row: TimelineRow, clock: Clock) -> dict[str, Any]:
    """One timeline event as the JSON export (and the schema) has it."""
    return {
        "id": row.id,
        "at": clock.iso(row.at),
        "at_local": clock.iso_local(row.at),
        "kind": row.kind,
        "actor": {"id": row.actor_id, "name": row.actor_name} if row.actor_id else None,
        "text": row.text,
        "data": row.data,
    }


def render_json(
    report: dict[str, Any], rows: Iterator[TimelineRow], clock: Clock, names: dict[str, str]
) -> Iterator[str]:
    """Yield one JSON document in chunks; `timeline` comes last so it can stream."""
    sections = {section.key: section.as_json() for section in report["sections"]}
    head = json.dumps({**report, "sections": sections}, ensure_ascii=False, indent=2)
    # Reopen the object to append the streamed timeline as its last key.
    yield head[: head.rstrip().rfind("}")].rstrip() + ',\n  "timeline": ['
    chunk: list[str] = []
    first = True
    for row in rows:
        chunk.append(
            ("\n    " if first else ",\n    ") + json.dumps(timeline_entry(row, clock), ensure_ascii=False)
        )
        first = False
        if len(chunk) >= CHUNK_ROWS:
            yield "".join(chunk)
            chunk = []
    yield "".join(chunk) + ("\n  ]\n}\n" if not first else "]\n}\n")
