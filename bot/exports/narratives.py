"""The export's "Narratives over the incident" section: each stored digest's narratives, oldest first.

Read from the digests' stored figures (`Digest.figures["narratives"]`), so the export shows the
stories as the room saw them at the time, and how they moved from one digest to the next. Cells are
plain text; every format escapes them.
"""

from __future__ import annotations

from sqlalchemy import select

from bot.exports.sections import Section, SectionContext
from bot.listening.narratives import NOT_ENOUGH, NarrativeSet
from models import Digest

MAX_DIGESTS = 500
EXAMPLE_CHARS = 200
COLUMNS = ("Digest window end", "Narrative", "Share", "Posts", "Trend", "Negative", "Reach",
           "Tracked rumours", "Example")


def narratives_section(context: SectionContext) -> Section | None:
    """One row per narrative per digest (and its "other"); None when no digest stored narratives."""
    digests = context.session.execute(
        select(Digest.window_end, Digest.figures)
        .where(Digest.incident_id == context.incident.id)
        .order_by(Digest.window_end.desc(), Digest.id.desc())
        .limit(MAX_DIGESTS)
    ).all()
    rows: list[tuple[str, ...]] = []
    shown = 0
    for window_end, figures in reversed(digests):
        stored = (figures or {}).get("narratives")
        if not stored:
            continue
        shown += 1
        narratives = NarrativeSet.from_json(stored)
        when = context.time_text(window_end)
        if not narratives.narratives:
            reason = "not enough posts to group" if narratives.note == NOT_ENOUGH else "no common thread"
            rows.append((when, f"({reason})", "", str(narratives.posts), "", "", "", "", ""))
            continue
        for narrative in narratives.narratives:
            example = " ".join(narrative.examples[0].text.split())[:EXAMPLE_CHARS] if narrative.examples else ""
            rows.append((when, narrative.heading, f"{narrative.share:.0%}", str(narrative.posts), narrative.trend,
                         f"{narrative.negative_share:.0%}", str(narrative.reach), "; ".join(narrative.rumours),
                         example))
        sampled = f" (sample of {narratives.window_posts})" if narratives.sampled else ""
        rows.append((when, "other", f"{narratives.other_share:.0%}", f"{narratives.other_posts}{sampled}",
                     "", "", "", "", ""))
    if not shown:
        return None
    cut = f" Only the last {MAX_DIGESTS} digests are listed." if len(digests) == MAX_DIGESTS else ""
    return Section(
        key="narratives", title="Narratives over the incident",
        intro=("The stories each digest found in its window, oldest first: share of the window's posts, trend "
               f"against the window before, negative share and reach.{cut}"),
        columns=COLUMNS, rows=tuple(rows),
    )
