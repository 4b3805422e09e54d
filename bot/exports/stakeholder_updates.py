"""The export's section on stakeholder updates (bot/drafting/updates.py): every update, who approved it,
where it was posted."""

from __future__ import annotations

from bot.drafting.updates import update_records
from bot.exports.sections import Section, SectionContext
from models.updates import POSTED


def updates_section(context: SectionContext) -> Section | None:
    """The export's list of every stakeholder update: who asked, who approved it and when, where it went."""
    records = update_records(context.session, context.incident.id)
    if not records:
        return None
    rows = tuple(
        (f"#{record.draft_id}", record.status, record.requested_by, record.approved_by or "—",
         context.time_text(record.approved_at), record.posted_to or "—",
         context.time_text(record.posted_at) if record.post_status == POSTED else (record.post_status or "—"),
         record.text)
        for record in records
    )
    return Section(
        key="stakeholder_updates",
        title="Stakeholder updates",
        intro="Every internal update drafted with /crisis update, approved through the same gate as public "
              "replies, and where it was posted.",
        columns=("Update", "Status", "Requested by", "Approved by", "Approved at", "Posted to", "Posted at",
                 "Text"),
        rows=rows,
    )
