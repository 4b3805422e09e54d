"""Sections of the export that a feature adds without touching the four formats.

A feature (tasks, stakeholder updates, narratives, publishing …) writes one builder that reads its
own tables and returns a `Section`: a title, an optional table and optional bullet lines, all plain
text. Markdown, HTML, JSON and CSV render every section the same way and escape every cell, so a
builder never thinks about escaping and a format never learns about a feature. The builders are
listed once, in `bot.exports.report.SECTION_BUILDERS`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from models import Incident


@dataclass(frozen=True)
class Section:
    """One export section. Cells and items are untrusted plain text; renderers escape them."""

    key: str  # the JSON key and the CSV `kind`; lowercase with underscores
    title: str
    intro: str = ""
    columns: tuple[str, ...] = ()
    rows: tuple[tuple[str, ...], ...] = ()
    items: tuple[str, ...] = ()
    empty: str = "None recorded."
    data: dict[str, Any] = field(default_factory=dict)  # extra JSON-ready values for the JSON export

    def is_empty(self) -> bool:
        return not self.rows and not self.items

    def as_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "intro": self.intro,
            "rows": [dict(zip(self.columns, row, strict=True)) for row in self.rows],
            "items": list(self.items),
            **self.data,
        }


@dataclass(frozen=True)
class SectionContext:
    """What a builder gets: the open session, the incident, and how to write times."""

    session: Session
    incident: Incident
    time_text: Callable[[Any], str]  # a datetime (or None) as "UTC (local)" text for a cell


SectionBuilder = Callable[[SectionContext], Section | None]
