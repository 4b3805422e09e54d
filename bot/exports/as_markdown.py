"""The Markdown export: a post-mortem document with the whole timeline as a table."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from bot.exports.document import (
    Cells,
    Markup,
    in_chunks,
    incident_rows,
    mention_window_rows,
    metric_rows,
    record_parts,
)
from bot.exports.report import Clock, TimelineRow, with_names

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


def _list(items: Iterable[str], bullet: str = "- ") -> str:
    return "".join(f"{bullet}{item}\n" for item in items)


MARKUP = Markup(
    heading=lambda text: f"## {text}\n\n",
    paragraph=lambda text: f"{text}\n\n",
    table=_table,
    bullets=lambda items: _list(items) + "\n",
    aside=lambda text: text,
    entry=lambda title, lines, quote: f"### {title}\n\n" + _list(lines) + "\n" + (f"> {quote}\n\n" if quote else ""),
)


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
    cells = Cells(md, _who, lambda iso: _when(iso, clock))
    history = " → ".join(
        f"{md(step['severity'])} ({_when(step['at'], clock)})" for step in report["severity_history"]
    )
    playbook = (
        f"{md(incident['playbook_title'])} (`{md(incident['playbook'])}`)" if incident["playbook"] else "—"
    )
    at_a_glance = incident_rows(report, cells, names, history=history, playbook=playbook)
    yield _table(["", ""], [[f"**{label}**", value] for label, value in at_a_glance])

    yield "## Metrics\n\n"
    yield _table(["Metric", "Value", "When"], metric_rows(metrics, _metric))
    yield "First acknowledgement: the first thing a person did in the channel once it was ready.\n\n"
    window_rows = mention_window_rows(mentions, cells)
    yield "### Mentions\n\n"
    yield _table(["Period", "From", "To", "Mentions", "Per hour", "Negative"], window_rows)

    yield from record_parts(report, MARKUP, cells, names)

    yield (
        "## Timeline\n\n| # | Time (UTC) | Time (" + md(report["time_zone"]) + ") | Who | Event | Details |\n"
        "|---|---|---|---|---|---|\n"
    )
    yield from in_chunks(
        (
            f"| {row.id} | {clock.utc_text(row.at)} | {clock.local_text(row.at)} | "
            f"{md(row.actor_name or 'War Room')} | `{md(row.kind)}` | {md(row.text, names)} |\n"
            for row in rows
        ),
        CHUNK_ROWS,
        end="\n",
    )

    post_mortem = report["post_mortem"]
    yield "## Post-mortem\n\n_Seeded from the records above; edit and complete._\n\n"
    for title, key, bullet in (
        ("What went well", "went_well", "- "),
        ("What to improve", "to_improve", "- "),
        ("Action items", "action_items", "- [ ] "),
    ):
        yield f"### {title}\n\n" + _list((md(line, names) for line in post_mortem[key]), bullet) + f"{bullet}\n\n"
