"""Storing mentions in bulk (COPY into a staging table on PostgreSQL): the same rows, dedupe and counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from bot.background.runtime import Runtime
from bot.listening.mentions import INSERT_BATCH, NewMention, store_mentions
from models import Mention, transaction

AWKWARD = ["tab\there", "new\nline\r\n", "back\\slash \\N \\.", "\\.", "emoji 🙂 ünïcödé", "comma, \"quote\" 'single'"]


def mentions(count: int, start: int = 0) -> list[NewMention]:
    at = datetime(2024, 5, 1, 12, tzinfo=UTC)
    return [NewMention(platform="bluesky", external_id=f"post-{n}", text=f"{AWKWARD[n % len(AWKWARD)]} #{n}",
                       created_at=at + timedelta(seconds=n), author=None if n % 5 else f"author {n}",
                       url=f"https://example.social/{n}" if n % 2 else None, author_followers=n, likes=n % 7,
                       lang=None if n % 3 else "en")
            for n in range(start, start + count)]


def test_a_request_larger_than_one_batch_stores_every_row_once_with_its_text_intact(runtime: Runtime) -> None:
    first = mentions(INSERT_BATCH * 2 + 100)
    with transaction(runtime.sessions) as session:
        result = store_mentions(session, first + first[:10], source="webhook")  # repeats in the same request
    assert (result.accepted, result.duplicates) == (len(first), 10)
    # Overlapping resend: only the new ones go in, and are counted.
    with transaction(runtime.sessions) as session:
        again = store_mentions(session, mentions(300, start=len(first) - 200), source="webhook")
    assert (again.accepted, again.duplicates) == (100, 200)
    with transaction(runtime.sessions) as session:
        assert session.scalar(select(func.count()).select_from(Mention)) == len(first) + 100
        stored = {m.external_id: m for m in session.scalars(select(Mention))}
    for mention in mentions(len(first) + 100):
        row = stored[mention.external_id]
        assert (row.text, row.author, row.url, row.lang, row.author_followers, row.likes, row.created_at) == (
            mention.text, mention.author, mention.url, mention.lang, mention.author_followers, mention.likes,
            mention.created_at)
        assert row.sentiment_label in ("negative", "neutral", "positive") and row.source == "webhook"


def test_a_rolled_back_request_stores_nothing_and_the_next_one_works(runtime: Runtime) -> None:
    try:
        with transaction(runtime.sessions) as session:
            store_mentions(session, mentions(50), source="webhook")
            raise RuntimeError("the request failed after storing")
    except RuntimeError:
        pass
    with transaction(runtime.sessions) as session:
        assert session.scalar(select(func.count()).select_from(Mention)) == 0
        assert store_mentions(session, mentions(50), source="webhook").accepted == 50
