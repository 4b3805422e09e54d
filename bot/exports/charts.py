"""The digest chart: mention volume (bars) and negative share (line) since the incident opened, as PNG.

matplotlib is imported on first use (it is slow to import and most processes never draw) and draws
on an Agg canvas, so no display is needed; figures are built with the object API, not pyplot's
global state.
"""

from __future__ import annotations

import io
import math
import threading
from collections.abc import Sequence
from datetime import datetime

from bot.listening.digests import SeriesPoint

_LOCK = threading.Lock()
MAX_BARS = 96


def merge_points(series: Sequence[SeriesPoint], minutes: int) -> tuple[list[SeriesPoint], int]:
    """Merge neighbouring buckets so a long incident still draws at most MAX_BARS bars."""
    group = max(1, math.ceil(len(series) / MAX_BARS))
    if group == 1:
        return list(series), minutes
    merged = [
        SeriesPoint(start=chunk[0].start, volume=sum(p.volume for p in chunk),
                    negative=sum(p.negative for p in chunk))
        for chunk in (series[i : i + group] for i in range(0, len(series), group))
    ]
    return merged, minutes * group


def render_chart(series: Sequence[SeriesPoint], *, title: str, minutes: int) -> bytes:
    """A PNG of the series: bars of volume per `minutes`, and the negative share as a line."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num
    from matplotlib.figure import Figure

    series, minutes = merge_points(series, minutes)
    times = [float(date2num(datetime.fromisoformat(point.start))) for point in series]
    volumes = [point.volume for point in series]
    shares = [100 * point.negative / point.volume if point.volume else 0.0 for point in series]
    width_days = minutes / 1440 * 0.9
    with _LOCK:  # matplotlib's font cache and text layout are not safe to share across threads
        figure = Figure(figsize=(8, 3.2), dpi=100)
        FigureCanvasAgg(figure)  # the Agg canvas, without touching pyplot's global backend
        axes = figure.add_subplot()
        axes.bar(times, volumes, width=width_days, align="edge", color="#4a7bd0", label="mentions")
        axes.set_ylabel("mentions")
        axes.set_title(title[:90], fontsize=10)
        locator = AutoDateLocator()
        axes.xaxis.set_major_locator(locator)
        axes.xaxis.set_major_formatter(ConciseDateFormatter(locator))
        share_axes = axes.twinx()
        share_axes.plot(times, shares, color="#d0443a", marker="o", markersize=3, label="% negative")
        share_axes.set_ylim(0, 100)
        share_axes.set_ylabel("% negative")
        handles = axes.get_legend_handles_labels()[0] + share_axes.get_legend_handles_labels()[0]
        axes.legend(handles=handles, loc="upper left", fontsize=8)
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
    return buffer.getvalue()
