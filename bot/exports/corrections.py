"""The export's section listing an incident's sentiment corrections (`bot.listening.corrections`)."""

from __future__ import annotations

from sqlalchemy import select

from bot.exports.sections import Section, SectionContext
from models import Mention, SentimentCorrection


def corrections_section(context: SectionContext) -> Section | None:
    """The export's list of the incident's sentiment corrections (None when there are none)."""
    rows = context.session.execute(
        select(SentimentCorrection, Mention.platform, Mention.author, Mention.text)
        .join(Mention, Mention.id == SentimentCorrection.mention_id)
        .where(SentimentCorrection.incident_id == context.incident.id)
        .order_by(SentimentCorrection.corrected_at, Mention.id)
    ).all()
    if not rows:
        return None
    return Section(
        key="sentiment_corrections", title="Sentiment corrections",
        intro="Posts whose sentiment a monitor corrected; figures count the corrected label.",
        columns=("When", "By", "Platform", "Author", "Post", "Model said", "Corrected to"),
        rows=tuple((context.time_text(correction.corrected_at), correction.corrected_by, platform, author or "",
                    text[:500], correction.model_label, correction.label)
                   for correction, platform, author, text in rows),
    )
