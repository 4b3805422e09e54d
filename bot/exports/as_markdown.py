"""The Markdown export: a post-mortem document with the whole timeline as a table."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from bot.exports.report import (
    Cells,
    Clock,
    TimelineRow,
    mention_window_rows,
    metric_rows,
    role_rows,
    rumour_rows,
    with_names,
)

CHUNK_ROWS = 500
_ESCAPES = str.maketrans(
    {
        "&": "&amp;",
        "<": "&lt;",
        ">": "&gt;",
        "|": "\\|",
        "\\": "\\\\",
        "*": "\\*",
        "_": "\\_",
        "`": "\\`",
        "[": "\\[",
        "]": "\\]",
        "#": "\\#",
    }
)


def md(text: Any, names: dict[str, str] | None = None) -> str:
    """Text made inert in Markdown: no HTML, links, emphasis or table breaks; newlines kept as <br>."""
    value = "" if text is None else str(text)
    if names is not None:
        value = with_names(value, names)
    return value.translate(_ESCAPES).replace("\r\n", "\n").replace("\r", "\n").replace("\n", "<br>")


def _who(person: dict[str, str] | None) -> str:
    return md(person["name"]) if person else "—"


def _when(iso: str | None, clock: Clock) -> str:
    if not iso:
        return "—"
    at = datetime.fromisoformat(iso)
    return f"{clock.utc_text(at)} ({clock.local_text(at)})"


def _table(header: Iterable[str], rows: Iterable[Iterable[str]]) -> str:
    header = list(header)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n\n"


def _metric(metric: dict[str, Any] | None) -> list[str]:
    if not metric:
        return ["—", "not reached"]
    by = f" by {_who(metric['by'])}" if metric["by"] else ""
    return [metric["text"], f"at {metric['at'][:19].replace('T', ' ')} UTC{by}"]


def render_markdown(
    report: dict[str, Any], rows: Iterator[TimelineRow], clock: Clock, names: dict[str, str]
) -> Iterator[str]:
    """Yield the Markdown document in chunks."""
    incident, metrics, mentions = report["incident"], report["metrics"], report["mentions"]
    yield f"# {'DRILL: ' if incident['drill'] else ''}{md(incident['title'], names)}\n\n"
    if incident["drill"]:
        yield "**A practice incident:** a drill replaying a recorded stream on a simulated clock.\n\n"
    yield (
        f"Timeline export of incident #{incident['id']} for {md(incident['brand'])}, generated "
        f"{_when(report['generated_at'], clock)}. "
        f"Times are shown in UTC and in {md(report['time_zone'])}.\n\n"
    )
    history = " → ".join(
        f"{md(step['severity'])} ({_when(step['at'], clock)})" for step in report["severity_history"]
    )
    playbook = (
        f"{md(incident['playbook_title'])} (`{md(incident['playbook'])}`)" if incident["playbook"] else "—"
    )
    channel = (
        f"#{md(incident['channel_name'])}" if incident["channel_name"] else md(incident["channel_id"] or "—")
    )
    yield _table(
        ["", ""],
        [
            ["**Status**", md(incident["status"])],
            ["**Severity**", f"{md(incident['severity'])} — {md(incident['severity_label'])}"],
            ["**Severity history**", history],
            ["**Playbook**", playbook],
            ["**Channel**", channel],
            ["**Opened**", f"{_when(incident['opened_at'], clock)} by {_who(incident['opened_by'])}"],
            [
                "**Resolved**",
                _when(incident["resolved_at"], clock)
                + (f" by {_who(incident['resolved_by'])}" if incident["resolved_by"] else ""),
            ],
            ["**Lead**", _who(incident["lead"])],
            ["**Summary**", md(incident["summary"] or "—", names)],
        ],
    )

    yield "## Metrics\n\n"
    yield _table(["Metric", "Value", "When"], metric_rows(metrics, _metric))
    yield "First acknowledgement: the first thing a person did in the channel once it was ready.\n\n"
    cells = Cells(md, _who, lambda iso: _when(iso, clock))
    window_rows = mention_window_rows(mentions, cells)
    yield "### Mentions\n\n"
    yield _table(["Period", "From", "To", "Mentions", "Per hour", "Negative"], window_rows)

    yield "## Roles\n\n"
    yield (
        _table(["Role", "Person", "Assigned", "By", "Ended"], role_rows(report["roles"], cells))
        if report["roles"]
        else "No roles were assigned.\n\n"
    )

    for title, key in (("Decisions", "decisions"), ("Facts", "facts"), ("Key messages", "key_messages")):
        yield f"## {title}\n\n"
        items = report[key]
        yield (
            "".join(
                f"- {md(item['text'], names)} — {_who(item['by'])}, {_when(item['at'], clock)}\n"
                for item in items
            )
            + "\n"
            if items
            else "None recorded.\n\n"
        )

    yield "## Drafts\n\n"
    if not report["drafts"]:
        yield "No drafts were requested.\n\n"
    for draft in report["drafts"]:
        yield f"### Draft #{draft['id']} — {md(draft['platform'])}, {md(draft['status'])}\n\n"
        yield (
            f"- Requested by {_who(draft['requested_by'])}, {_when(draft['requested_at'], clock)}: "
            f"{md(draft['request'], names)}\n"
        )
        if draft["strategy"]:
            yield (
                f"- Strategy: {md(draft['strategy'])}; source: {md(draft['source'])}; "
                f"revisions: {draft['revisions']}\n"
            )
        if draft["decided_by"]:
            yield (
                f"- {md(draft['status']).capitalize()} by {_who(draft['decided_by'])}, "
                f"{_when(draft['decided_at'], clock)}"
                + (f": {md(draft['reason'], names)}" if draft["reason"] else "")
                + "\n"
            )
        if draft["error"]:
            yield f"- Error: {md(draft['error'])}\n"
        yield "\n" + (f"> {md(draft['final_text'], names)}\n\n" if draft["final_text"] else "")

    yield "## Rumours\n\n"
    yield (
        _table(["Claim", "Outcome", "Tracked", "Decided"], rumour_rows(report["rumours"], cells, names))
        if report["rumours"]
        else "No rumours were tracked.\n\n"
    )

    for section in report["sections"]:
        yield f"## {md(section.title)}\n\n" + (f"{md(section.intro, names)}\n\n" if section.intro else "")
        if section.is_empty():
            yield f"{md(section.empty)}\n\n"
        if section.rows:
            yield _table([md(c) for c in section.columns], [[md(c, names) for c in row] for row in section.rows])
        if section.items:
            yield "".join(f"- {md(item, names)}\n" for item in section.items) + "\n"

    yield (
        "## Timeline\n\n| # | Time (UTC) | Time (" + md(report["time_zone"]) + ") | Who | Event | Details |\n"
        "|---|---|---|---|---|---|\n"
    )
    chunk: list[str] = []
    for row in rows:
        chunk.append(
            f"| {row.id} | {clock.utc_text(row.at)} | {clock.local_text(row.at)} | "
            f"{md(row.actor_name or 'War Room')} | `{md(row.kind)}` | {md(row.text, names)} |\n"
        )
        if len(chunk) >= CHUNK_ROWS:
            yield "".join(chunk)
            chunk = []
    yield "".join(chunk) + "\n"

    post_mortem = report["post_mortem"]
    yield "## Post-mortem\n\n_Seeded from the records above; edit and complete._\n\n"
    for title, key, bullet in (
        ("What went well", "went_well", "- "),
        ("What to improve", "to_improve", "- "),
        ("Action items", "action_items", "- [ ] "),
    ):
        yield (
            f"### {title}\n\n"
            + "".join(f"{bullet}{md(line, names)}\n" for line in post_mortem[key])
            + f"{bullet}\n\n"
        )
