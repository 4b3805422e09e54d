"""The export's "Published replies" section (bot/exports/sections.py)."""

from __future__ import annotations

from sqlalchemy import select

from bot.exports.sections import Section, SectionContext
from models import Publication


def publications_section(context: SectionContext) -> Section | None:
    """The export's "Published replies": each publication with its outcome and link (no credentials)."""
    rows = context.session.scalars(select(Publication).where(Publication.incident_id == context.incident.id)
                                   .order_by(Publication.id)).all()
    if not rows:
        return None
    return Section(
        key="publications", title="Published replies",
        intro="Approved drafts War Room posted to the platforms, verbatim, once each.",
        columns=("draft", "platform", "account", "status", "by", "published at", "link", "text", "problem"),
        rows=tuple((f"#{row.draft_id}", row.platform, row.account, row.status, row.requested_by,
                    context.time_text(row.published_at), row.url or "", row.text, row.error or "") for row in rows),
    )
