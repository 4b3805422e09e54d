"""Sentiment corrections: a monitor says what a post's sentiment really is, from a digest's top post or an
escalation (the overflow menu). The correction is stored beside the model's label (`SentimentCorrection`;
the latest one wins) and counted from then on wherever `effective_sentiment()` is read: digests, spike
explanations, escalations and the export. `warroom mentions corrections` writes them as labelled CSV in
the dev sets' schema (`id,text,label,created_at,source`) for tuning the scorer.

Who may correct: whoever holds the `monitor` or `lead` role in the incident whose channel the message is
in, checked here on every path.
"""

from __future__ import annotations

import csv
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TextIO

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.orm import Session

from bot.crisis.incidents import find_incident_by_channel
from bot.crisis.roles import LEAD, active_holders
from bot.crisis.timeline import record_event
from bot.infra.errors import CommandError
from bot.infra.settings import Settings
from models import Mention, SentimentCorrection, make_engine, make_session_factory, transaction

LABELS = ("negative", "neutral", "positive")
CORRECTORS = ("monitor", LEAD)
SENTIMENT_CORRECTED = "sentiment.corrected"
CSV_SOURCE = "warroom"


class CorrectionRefused(Exception):
    """The correction was not recorded; the message says why, for the person who asked."""


@dataclass(frozen=True)
class Corrected:
    mention_id: int
    incident_id: int
    model_label: str
    label: str


def effective_sentiment() -> ColumnElement[str]:
    """SQL: a post's sentiment as counted: a monitor's correction, else the model's label.
    Select it with `.outerjoin(SentimentCorrection, SentimentCorrection.mention_id == Mention.id)`."""
    return func.coalesce(SentimentCorrection.label, Mention.sentiment_label)


def corrected_labels(session: Session, mention_ids: list[int]) -> dict[int, str]:
    """mention id → corrected label, for those of `mention_ids` a monitor corrected."""
    if not mention_ids:
        return {}
    rows = session.execute(select(SentimentCorrection.mention_id, SentimentCorrection.label)
                           .where(SentimentCorrection.mention_id.in_(mention_ids)))
    return {mention_id: label for mention_id, label in rows}


def parse_choice(value: str) -> tuple[int, str] | None:
    """The menu option's value `<mention id>:<label>`, or None when it is not one."""
    mention, _, label = value.partition(":")
    if not mention.isdigit() or label not in LABELS:
        return None
    return int(mention), label


def correct_sentiment(session: Session, *, channel_id: str, user_id: str, mention_id: int, label: str,
                      now: datetime) -> Corrected:
    """Record `user_id`'s sentiment for a post shown in an incident channel; refused with a reason."""
    if label not in LABELS:
        raise CorrectionRefused(f"“{label}” is not a sentiment; choose negative, neutral or positive.")
    incident = find_incident_by_channel(session, channel_id)
    if incident is None:
        raise CorrectionRefused("Sentiment is corrected from a message in an incident channel; this isn't one.")
    holders = active_holders(session, incident.id)
    if not any(user_id in holders.get(role, []) for role in CORRECTORS):
        raise CorrectionRefused("Only the incident's monitor or lead can correct a post's sentiment.")
    mention = session.get(Mention, mention_id)
    if mention is None:
        raise CorrectionRefused("That post is no longer stored; nothing to correct.")
    correction = session.get(SentimentCorrection, mention_id)
    if correction is None:
        correction = SentimentCorrection(mention_id=mention_id, model_label=mention.sentiment_label)
        session.add(correction)
    correction.label, correction.incident_id = label, incident.id
    correction.corrected_by, correction.corrected_at = user_id, now
    record_event(session, incident.id, SENTIMENT_CORRECTED,
                 f"Sentiment of a {mention.platform} post corrected: {mention.sentiment_label} → {label}",
                 actor=user_id, data={"mention_id": mention_id, "model_label": mention.sentiment_label,
                                      "label": label})
    return Corrected(mention_id, incident.id, mention.sentiment_label, label)


def export_corrections(settings: Settings, output: Path | None) -> int:
    """`warroom mentions corrections [-o FILE]`: exit code 0, the count on stderr."""
    engine = make_engine(settings.database_url)
    try:
        with transaction(make_session_factory(engine)) as session:
            if output is None:
                written = write_corrections_csv(session, sys.stdout)
            else:
                with output.open("w", encoding="utf-8", newline="") as out:
                    written = write_corrections_csv(session, out)
    except (OperationalError, ProgrammingError) as exc:
        why = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        raise CommandError(f"DATABASE_URL: cannot read corrections ({why}); try `warroom db upgrade`") from None
    finally:
        engine.dispose()
    print(f"{written:,} sentiment corrections written" + (f" to {output}" if output else ""), file=sys.stderr)
    return 0


def write_corrections_csv(session: Session, out: TextIO) -> int:
    """Every correction as a labelled row (`id,text,label,created_at,source`); how many were written."""
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(("id", "text", "label", "created_at", "source"))
    rows = session.execute(
        select(Mention.platform, Mention.external_id, Mention.text, SentimentCorrection.label, Mention.created_at)
        .join(SentimentCorrection, SentimentCorrection.mention_id == Mention.id)
        .order_by(SentimentCorrection.corrected_at, Mention.id)
        .execution_options(yield_per=1000)
    )
    written = 0
    for platform, external_id, text, label, created_at in rows:
        writer.writerow((f"{platform}:{external_id}", text, label, created_at.isoformat(), CSV_SOURCE))
        written += 1
    return written
