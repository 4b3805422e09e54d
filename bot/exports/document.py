"""The document the Markdown and HTML exports both write: its parts, worded and ordered once.

A format says how it writes a cell (`Cells`: escaped text, a person, a time) and a block (`Markup`:
a heading, a paragraph, a table, a bullet list, an aside); the functions here build every part whose
wording is the same in both documents from those, so the two cannot drift apart. What only one format
shows (the HTML chart, the Markdown checkboxes) stays in that format's module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from bot.exports.sections import Section


@dataclass(frozen=True)
class Cells:
    """How one format writes a table cell: escaped text, a person, a time."""

    text: Callable[..., str]  # (value, names=None) -> escaped text
    who: Callable[[dict[str, str] | None], str]
    when: Callable[[str | None], str]


@dataclass(frozen=True)
class Markup:
    """How one format writes a block; every argument is already escaped."""

    heading: Callable[[str], str]  # a section's heading
    paragraph: Callable[[str], str]
    table: Callable[[list[str], list[list[str]]], str]  # header, rows
    bullets: Callable[[list[str]], str]
    aside: Callable[[str], str]  # text shown quieter than the text before it
    entry: Callable[[str, list[str], str], str]  # a titled entry: title, bullet lines, quoted text ("": none)


def metric_rows(metrics: dict[str, Any], metric: Callable[[dict[str, Any] | None], list[str]]) -> list[list[str]]:
    """Metric, value, when: the three durations (as `metric` writes them), drafts and rumours."""
    drafts, rumours = metrics["drafts"], metrics["rumours"]
    return [
        ["Time to first acknowledgement", *metric(metrics["time_to_first_acknowledgement"])],
        ["Time to first approved statement", *metric(metrics["time_to_first_approved_statement"])],
        ["Time to resolve", *metric(metrics["time_to_resolve"])],
        [
            "Drafts",
            f"{drafts['requested']} requested",
            f"{drafts['approved']} approved, {drafts['rejected']} "
            f"rejected, {drafts['pending']} pending, {drafts['failed']} failed",
        ],
        [
            "Rumours",
            f"{rumours['total']} tracked",
            f"{rumours['refuted']} refuted, {rumours['confirmed']} "
            f"confirmed, {rumours['dismissed']} dismissed, {rumours['open']} open",
        ],
    ]


def mention_window_rows(mentions: dict[str, Any], cells: Cells) -> list[list[str]]:
    """Before / during / after: period, from, to, mentions, per hour, negative share."""
    rows = []
    for name in ("before", "during", "after"):
        window = mentions[name]
        if window is None:
            rows.append([name, "—", "—", "—", "—", "—"])
            continue
        rows.append([
            name,
            cells.when(window["start"]),
            cells.when(window["end"]),
            str(window["count"]),
            "—" if window["per_hour"] is None else str(window["per_hour"]),
            "—" if window["negative_share"] is None else f"{window['negative_share']:.0%}",
        ])
    return rows


def role_rows(roles: list[dict[str, Any]], cells: Cells) -> list[list[str]]:
    """Role, person, assigned, by, ended (and by whom)."""
    return [
        [
            cells.text(role["title"]),
            cells.who(role["user"]),
            cells.when(role["assigned_at"]),
            cells.who(role["assigned_by"]),
            cells.when(role["ended_at"]) + (f" by {cells.who(role['ended_by'])}" if role["ended_by"] else ""),
        ]
        for role in roles
    ]


def rumour_rows(rumours: list[dict[str, Any]], cells: Cells, names: dict[str, str]) -> list[list[str]]:
    """Claim, outcome, who tracked it and when, who decided it and when."""
    return [
        [
            cells.text(r["claim"], names),
            cells.text(r["status"]) + (f": {cells.text(r['outcome'], names)}" if r["outcome"] else ""),
            f"{cells.who(r['created_by'])}, {cells.when(r['created_at'])}",
            f"{cells.who(r['decided_by'])}, {cells.when(r['decided_at'])}" if r["decided_by"] else "—",
        ]
        for r in rumours
    ]


def incident_rows(
    report: dict[str, Any], cells: Cells, names: dict[str, str], *, history: str, playbook: str
) -> list[tuple[str, str]]:
    """The incident at a glance as (label, value) pairs; `history` and `playbook` are the format's own."""
    incident = report["incident"]
    channel = (
        f"#{cells.text(incident['channel_name'])}"
        if incident["channel_name"]
        else cells.text(incident["channel_id"] or "—")
    )
    resolved_by = f" by {cells.who(incident['resolved_by'])}" if incident["resolved_by"] else ""
    return [
        ("Status", cells.text(incident["status"])),
        ("Severity", f"{cells.text(incident['severity'])} — {cells.text(incident['severity_label'])}"),
        ("Severity history", history),
        ("Playbook", playbook),
        ("Channel", channel),
        ("Opened", f"{cells.when(incident['opened_at'])} by {cells.who(incident['opened_by'])}"),
        ("Resolved", cells.when(incident["resolved_at"]) + resolved_by),
        ("Lead", cells.who(incident["lead"])),
        ("Summary", cells.text(incident["summary"] or "—", names)),
    ]


def _table_or(markup: Markup, header: list[str], rows: list[list[str]], empty: str) -> str:
    """The table, or the paragraph `empty` when there are no rows."""
    return markup.table(header, rows) if rows else markup.paragraph(empty)


def record_parts(report: dict[str, Any], markup: Markup, cells: Cells, names: dict[str, str]) -> Iterator[str]:
    """Roles, decisions, facts, key messages, drafts, rumours and the features' sections, in that order."""
    yield from _roles(report, markup, cells)
    yield from _records(report, markup, cells, names)
    yield from _drafts(report, markup, cells, names)
    yield from _rumours(report, markup, cells, names)
    yield from _sections(report["sections"], markup, cells, names)


def _roles(report: dict[str, Any], markup: Markup, cells: Cells) -> Iterator[str]:
    yield markup.heading("Roles")
    rows = role_rows(report["roles"], cells)
    yield _table_or(markup, ["Role", "Person", "Assigned", "By", "Ended"], rows, "No roles were assigned.")


def _records(report: dict[str, Any], markup: Markup, cells: Cells, names: dict[str, str]) -> Iterator[str]:
    """Decisions, facts and key messages: each with who recorded it and when."""
    for title, key in (("Decisions", "decisions"), ("Facts", "facts"), ("Key messages", "key_messages")):
        items = [
            f"{cells.text(item['text'], names)} "
            + markup.aside(f"— {cells.who(item['by'])}, {cells.when(item['at'])}")
            for item in report[key]
        ]
        yield markup.heading(title) + (markup.bullets(items) if items else markup.paragraph("None recorded."))


def _drafts(report: dict[str, Any], markup: Markup, cells: Cells, names: dict[str, str]) -> Iterator[str]:
    yield markup.heading("Drafts")
    if not report["drafts"]:
        yield markup.paragraph("No drafts were requested.")
    for draft in report["drafts"]:
        title, lines = _draft_lines(draft, cells, names)
        quote = cells.text(draft["final_text"], names) if draft["final_text"] else ""
        yield markup.entry(title, lines, quote)


def _draft_lines(draft: dict[str, Any], cells: Cells, names: dict[str, str]) -> tuple[str, list[str]]:
    """A draft's title and its lines: who asked for what, its strategy, who decided and why, its error."""
    title = f"Draft #{draft['id']} — {cells.text(draft['platform'])}, {cells.text(draft['status'])}"
    lines = [
        f"Requested by {cells.who(draft['requested_by'])}, {cells.when(draft['requested_at'])}: "
        f"{cells.text(draft['request'], names)}"
    ]
    if draft["strategy"]:
        lines.append(
            f"Strategy: {cells.text(draft['strategy'])}; source: {cells.text(draft['source'])}; "
            f"revisions: {draft['revisions']}"
        )
    if draft["decided_by"]:
        lines.append(
            f"{cells.text(draft['status']).capitalize()} by {cells.who(draft['decided_by'])}, "
            f"{cells.when(draft['decided_at'])}"
            + (f": {cells.text(draft['reason'], names)}" if draft["reason"] else "")
        )
    if draft["error"]:
        lines.append(f"Error: {cells.text(draft['error'])}")
    return title, lines


def _rumours(report: dict[str, Any], markup: Markup, cells: Cells, names: dict[str, str]) -> Iterator[str]:
    yield markup.heading("Rumours")
    rows = rumour_rows(report["rumours"], cells, names)
    yield _table_or(markup, ["Claim", "Outcome", "Tracked", "Decided"], rows, "No rumours were tracked.")


def _sections(sections: list[Section], markup: Markup, cells: Cells, names: dict[str, str]) -> Iterator[str]:
    """The features' sections (bot/exports/sections.py), every cell and item escaped."""
    text = cells.text
    for section in sections:
        yield markup.heading(text(section.title)) + (
            markup.paragraph(text(section.intro, names)) if section.intro else ""
        )
        if section.is_empty():
            yield markup.paragraph(text(section.empty))
        if section.rows:
            rows = [[text(cell, names) for cell in row] for row in section.rows]
            yield markup.table([text(column) for column in section.columns], rows)
        if section.items:
            yield markup.bullets([text(item, names) for item in section.items])


def in_chunks(lines: Iterable[str], size: int, end: str) -> Iterator[str]:
    """`lines` joined `size` at a time (a long timeline streams, never one string), `end` after the last."""
    chunk: list[str] = []
    for line in lines:
        chunk.append(line)
        if len(chunk) >= size:
            yield "".join(chunk)
            chunk = []
    yield "".join(chunk) + end
