"""The HTML export: one self-contained page (inline CSS, the chart as a base64 PNG, no external assets)."""

from __future__ import annotations

import base64
from collections.abc import Iterable, Iterator
from datetime import datetime
from html import escape
from typing import Any

from bot.exports.charts import render_chart
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
from bot.listening.digests import SeriesPoint

CHUNK_ROWS = 500
STYLE = """
body{font:14px/1.45 -apple-system,"Segoe UI",Helvetica,Arial,sans-serif;color:#1d1c1d;
max-width:1100px;margin:2em auto;padding:0 1em}
h1{margin-bottom:.2em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.8em}
table{border-collapse:collapse;width:100%;margin:.6em 0}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f6f6f6}td.t{white-space:nowrap;font-variant-numeric:tabular-nums}code{font-size:12px;color:#555}
blockquote{border-left:4px solid #ccc;margin:.4em 0;padding:.2em .8em;background:#fafafa;white-space:pre-wrap}
.muted{color:#777}.pm li{min-height:1.4em}img{max-width:100%}
"""


def h(text: Any, names: dict[str, str] | None = None) -> str:
    """Untrusted or team text, HTML-escaped (with `<@U…>` shown as @Name first)."""
    value = "" if text is None else str(text)
    return escape(with_names(value, names) if names is not None else value)


def _who(person: dict[str, str] | None) -> str:
    return h(person["name"]) if person else "—"


def _when(iso: str | None, clock: Clock) -> str:
    if not iso:
        return "—"
    at = datetime.fromisoformat(iso)
    return f"{h(clock.utc_text(at))} <span class=muted>({h(clock.local_text(at))})</span>"


def _table(header: Iterable[str], rows: Iterable[Iterable[str]]) -> str:
    head = "".join(f"<th>{cell}</th>" for cell in header)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>\n"


def _list(items: Iterable[str]) -> str:
    return "<ul>" + "".join(f"<li>{item}</li>" for item in items) + "</ul>"


MARKUP = Markup(
    heading=lambda text: f"<h2>{text}</h2>\n",
    paragraph=lambda text: f"<p>{text}</p>\n",
    table=_table,
    bullets=lambda items: _list(items) + "\n",
    aside=lambda text: f"<span class=muted>{text}</span>",
    entry=lambda title, lines, quote: (
        f"<h3>{title}</h3>" + _list(lines) + (f"<blockquote>{quote}</blockquote>" if quote else "") + "\n"
    ),
)


def _metric(metric: dict[str, Any] | None, clock: Clock) -> list[str]:
    if not metric:
        return ["—", "not reached"]
    return [
        h(metric["text"]),
        _when(metric["at"], clock) + (f" by {_who(metric['by'])}" if metric["by"] else ""),
    ]


def render_html(
    report: dict[str, Any], rows: Iterator[TimelineRow], clock: Clock, names: dict[str, str]
) -> Iterator[str]:
    """Yield the HTML page in chunks."""
    incident, metrics, mentions = report["incident"], report["metrics"], report["mentions"]
    yield (
        f"<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
        f'<meta name=viewport content="width=device-width,initial-scale=1">'
        f"<title>{h(incident['title'])} — War Room export</title><style>{STYLE}</style></head><body>\n"
    )
    yield f"<h1>{'DRILL: ' if incident['drill'] else ''}{h(incident['title'], names)}</h1>\n"
    if incident["drill"]:
        yield "<p><strong>A practice incident:</strong> a drill replaying a recorded stream on a simulated clock.</p>\n"
    yield (
        f"<p class=muted>Timeline export of incident #{incident['id']} for {h(incident['brand'])}, generated "
        f"{_when(report['generated_at'], clock)}. Times in UTC and {h(report['time_zone'])}.</p>\n"
    )
    cells = Cells(h, _who, lambda iso: _when(iso, clock))
    history = " → ".join(
        f"{h(step['severity'])} <span class=muted>({_when(step['at'], clock)}, {_who(step['by'])})</span>"
        for step in report["severity_history"]
    )
    playbook = (
        f"{h(incident['playbook_title'])} <code>{h(incident['playbook'])}</code>" if incident["playbook"] else "—"
    )
    at_a_glance = incident_rows(report, cells, names, history=history, playbook=playbook)
    yield _table(["", ""], [[label, value] for label, value in at_a_glance])

    yield "<h2>Metrics</h2>\n"
    yield _table(["Metric", "Value", "When"], metric_rows(metrics, lambda m: _metric(m, clock)))
    yield (
        "<p class=muted>First acknowledgement: the first thing a person did in the channel "
        "once it was ready.</p>\n"
    )
    yield "<h3>Mentions</h3>\n"
    window_rows = mention_window_rows(mentions, cells)
    yield _table(["Period", "From", "To", "Mentions", "Per hour", "Negative"], window_rows)
    series = [
        SeriesPoint(
            start=bucket["start"],
            volume=bucket["negative"] + bucket["neutral"] + bucket["positive"],
            negative=bucket["negative"],
        )
        for bucket in mentions["series"]
    ]
    if any(point.volume for point in series):
        chart = render_chart(
            series,
            title=f"Mentions per {mentions['bucket_minutes']} min, from the look-back before opening",
            minutes=mentions["bucket_minutes"],
        )
        yield (
            '<img alt="Mention volume by sentiment" src="data:image/png;base64,'
            + base64.b64encode(chart).decode("ascii")
            + '">\n'
        )
    else:
        yield "<p class=muted>No mentions matched this incident's keywords.</p>\n"

    yield from record_parts(report, MARKUP, cells, names)

    yield (
        "<h2>Timeline</h2>\n<table><thead><tr><th>#</th><th>Time (UTC)</th>"
        f"<th>Time ({h(report['time_zone'])})"
        "</th><th>Who</th><th>Event</th><th>Details</th></tr></thead><tbody>\n"
    )
    yield from in_chunks(
        (
            f"<tr id=e{row.id}><td>{row.id}</td><td class=t>{h(clock.utc_text(row.at))}</td>"
            f"<td class=t>{h(clock.local_text(row.at))}</td><td>{h(row.actor_name or 'War Room')}</td>"
            f"<td><code>{h(row.kind)}</code></td><td>{h(row.text, names)}</td></tr>\n"
            for row in rows
        ),
        CHUNK_ROWS,
        end="</tbody></table>\n",
    )

    post_mortem = report["post_mortem"]
    yield "<h2>Post-mortem</h2>\n<p class=muted>Seeded from the records above; edit and complete.</p>\n"
    for title, key in (
        ("What went well", "went_well"),
        ("What to improve", "to_improve"),
        ("Action items", "action_items"),
    ):
        yield (
            f"<h3>{title}</h3><ul class=pm>"
            + "".join(f"<li>{h(line, names)}</li>" for line in post_mortem[key])
            + "<li></li></ul>\n"
        )
    yield "</body></html>\n"
