"""The timeline export (Markdown, HTML, JSON, CSV): the post-mortem's raw material.

Every format is a generator of text chunks that reads the timeline in batches, so an
export of a very long incident streams to a file or upload with flat memory.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import select
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.orm import Session, sessionmaker

from bot.crisis.plan import Plan
from bot.exports.as_csv import render_csv
from bot.exports.as_html import render_html
from bot.exports.as_json import render_json
from bot.exports.as_markdown import render_markdown
from bot.exports.names import UserLookup, incident_user_ids, resolve_names, users_info_lookup
from bot.exports.report import Clock, IncidentNotFound, TimelineRow, build_report, timeline_rows
from bot.infra.errors import CommandError
from bot.infra.settings import Settings
from models import Incident, transaction, utcnow

Renderer = Callable[[dict[str, Any], Iterator[TimelineRow], Clock, dict[str, str]], Iterator[str]]


@dataclass(frozen=True)
class ExportFormat:
    name: str
    extension: str
    mime_type: str
    title: str
    render: Renderer


FORMATS: dict[str, ExportFormat] = {
    "md": ExportFormat("md", "md", "text/markdown", "Markdown", render_markdown),
    "html": ExportFormat("html", "html", "text/html", "HTML", render_html),
    "json": ExportFormat("json", "json", "application/json", "JSON", render_json),
    "csv": ExportFormat("csv", "csv", "text/csv", "CSV", render_csv),
}

__all__ = [
    "FORMATS",
    "ExportFormat",
    "IncidentNotFound",
    "export_command",
    "export_filename",
    "find_incident",
    "incident_names",
    "stream_export",
]


def stream_export(
    session: Session,
    incident_id: int,
    fmt: str,
    plan: Plan,
    names: dict[str, str],
    now: datetime | None = None,
    post_mortem: dict[str, list[str]] | None = None,
) -> Iterator[str]:
    """The export of one incident in `fmt` (md, html, json, csv), as text chunks; `post_mortem` replaces
    the seeded post-mortem sections (a draft computed before rendering)."""
    clock = Clock(plan.zone)
    report = build_report(session, incident_id, plan, names, now or utcnow(), post_mortem)
    yield from FORMATS[fmt].render(report, timeline_rows(session, incident_id, names), clock, names)


def incident_names(
    sessions: sessionmaker[Session], incident_id: int, lookup: UserLookup | None
) -> dict[str, str]:
    """Names of everyone the incident's records mention, from the cache or Slack (ids when neither knows)."""
    with transaction(sessions) as session:
        return resolve_names(session, incident_user_ids(session, incident_id), lookup)


def export_filename(incident: Incident, fmt: str) -> str:
    """`<channel name>-timeline.html`, or `incident-7-timeline.html` before a channel exists."""
    stem = incident.channel_name or f"incident-{incident.id}"
    return f"{re.sub(r'[^A-Za-z0-9_.-]+', '-', stem)}-timeline.{FORMATS[fmt].extension}"


def find_incident(session: Session, reference: str) -> Incident | None:
    """An incident by numeric id or by channel name (with or without `#`)."""
    reference = reference.strip()
    if reference.isdigit():
        return session.get(Incident, int(reference))
    name = reference.removeprefix("#")
    return session.scalars(select(Incident).where(Incident.channel_name == name)).first()


def write_export(
    sessions: sessionmaker[Session],
    incident_id: int,
    fmt: str,
    plan: Plan,
    out: TextIO,
    lookup: UserLookup | None,
    post_mortem: dict[str, list[str]] | None = None,
) -> int:
    """Stream the export into `out` (names asked of Slack with `lookup`); returns the characters written."""
    names = incident_names(sessions, incident_id, lookup)
    written = 0
    with sessions() as session:
        for chunk in stream_export(session, incident_id, fmt, plan, names, post_mortem=post_mortem):
            out.write(chunk)
            written += len(chunk)
    return written


def export_command(settings: Settings, incident: str, fmt: str, output: Path | None) -> int:
    """`warroom export INCIDENT --format FMT [-o FILE]`: write the export to FILE or stdout."""
    from bot.background.runtime import make_slack_client
    from bot.crisis.plan import load_plan, plan_path
    from models import make_engine, make_session_factory

    if fmt not in FORMATS:
        raise CommandError(f"--format {fmt!r}: use one of {', '.join(FORMATS)}")
    plan = load_plan(plan_path(settings.warroom_plan))
    engine = make_engine(settings.database_url)
    sessions = make_session_factory(engine)
    try:
        with sessions() as session:
            found = find_incident(session, incident)
            if found is None:
                raise CommandError(
                    f"no incident {incident!r}: give its number or its channel name "
                    "(like crisis-20240501-flights-delayed)"
                )
            incident_id = found.id
        # Names come from Slack only when a bot token is configured; otherwise the cache, else ids.
        slack = users_info_lookup(make_slack_client(settings)) if settings.slack_bot_token else None
        if output is None:
            write_export(sessions, incident_id, fmt, plan, sys.stdout, slack)
            sys.stdout.flush()
            return 0
        try:
            with output.open("w", encoding="utf-8", newline="") as out:
                written = write_export(sessions, incident_id, fmt, plan, out, slack)
        except OSError as exc:
            raise CommandError(f"{output}: cannot write ({exc.strerror})") from None
        print(f"wrote {output} ({FORMATS[fmt].title}, {written:,} characters)")
        return 0
    except (OperationalError, ProgrammingError) as exc:
        first_line = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        raise CommandError(
            f"DATABASE_URL: cannot read incidents ({first_line}); "
            "is the database reachable and upgraded (`warroom db upgrade`)?"
        ) from None
    finally:
        engine.dispose()
