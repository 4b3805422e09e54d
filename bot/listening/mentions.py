"""Mentions: validating, scoring and storing them once, and deciding which belong to an incident.

Figures every digest and export uses:

- **reach** — the author's followers (`author_followers`).
- **engagement** — `likes + shares + replies`, each weighted 1.
- **influence** — reach × engagement, log-scaled so one celebrity does not flatten every other post:
  `log10(1 + reach) + log10(1 + engagement)`, which equals `log10((1 + reach) × (1 + engagement))`;
  SQL ranks by the product itself (same order, no log function needed on SQLite).

A mention belongs to an incident when its text contains (case-insensitive substring) any of the
brand's keywords or the incident playbook's keywords, and it was posted at or after
`plan.mentions.lookback_minutes` before the incident opened. SQLite's LIKE folds ASCII letters only.

A mention matches a tracked rumour (an `open` Rumour of the incident) when its text contains at
least two-thirds (rounded up) of the claim's significant words: lower-cased words of three or more
letters that are not stop words and not the brand's own keywords. A claim with no significant word
matches nothing.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Float,
    Integer,
    String,
    Table,
    and_,
    any_,
    bindparam,
    case,
    cast,
    false,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from bot.crisis.plan import Plan
from bot.infra.metrics import MENTIONS_INGESTED
from bot.listening.bulk_insert import insert_mention_rows
from bot.listening.sentiment import score_texts
from models import Incident, Mention, utcnow

MAX_TEXT_CHARS = 20_000
# Far beyond any real count, and small enough that digests can add a post's likes + shares + replies
# in SQL (BIGINT on PostgreSQL: 2**63 - 1 in each overflowed the sum and failed the digest).
MAX_COUNT = 10**15
# No field takes a longer number: an id is at most 200 characters, a count 16 digits.
MAX_NUMBER_DIGITS = 200
INSERT_BATCH = 500
OPTIONAL_TEXT_FIELDS = {"url": 2000, "author": 200, "lang": 16}
COUNT_FIELDS = ("author_followers", "likes", "shares", "replies")
REQUIRED_FIELDS = ("platform", "id", "text", "created_at")
ALL_FIELDS = REQUIRED_FIELDS + tuple(OPTIONAL_TEXT_FIELDS) + COUNT_FIELDS

_STOP_WORDS_TEXT = """
a about above after again against all also am an and any are aren as at be because been before being below
between both but by can cannot could did didn do does doesn doing don down during each even ever every few
for from further get gets got had has hasn have haven having he her here hers herself him himself his how i
if in into is isn it its itself just let like ll me more most much must my myself no nor not now of off on
once only or other our ours ourselves out over own re really rt same says see she should so some still such
than that the their theirs them themselves then there these they this those through to too under until up
us very via was wasn we were weren what when where which while who whom why will with won would you your
yours yourself yourselves amp http https www com co t.co just gonna wanna yes yeah ok okay one two new
"""
STOP_WORDS = frozenset(_STOP_WORDS_TEXT.split())
_WORD = re.compile(r"[^\W\d_][\w'’-]*[^\W_]|[^\W\d_]", re.UNICODE)


@dataclass(frozen=True)
class FieldError:
    """One problem with one field of one submitted mention."""

    index: int
    field: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "field": self.field, "message": self.message}


@dataclass(frozen=True)
class LongNumber:
    """A JSON integer longer than MAX_NUMBER_DIGITS, kept as its digits: Python's int() refuses more
    than 4,300 digits (a 500 when json.loads met one), and no field could take it anyway."""

    digits: str

    def __str__(self) -> str:
        return self.digits


def json_int(digits: str) -> int | LongNumber:
    """`parse_int` for json.loads: an int, or a LongNumber that validation refuses with a field error."""
    return int(digits) if len(digits) <= MAX_NUMBER_DIGITS else LongNumber(digits)


@dataclass(frozen=True)
class NewMention:
    """A validated mention, not yet scored or stored."""

    platform: str
    external_id: str
    text: str
    created_at: datetime
    url: str | None = None
    author: str | None = None
    author_followers: int = 0
    likes: int = 0
    shares: int = 0
    replies: int = 0
    lang: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return self.platform, self.external_id


@dataclass(frozen=True)
class StoreResult:
    accepted: int
    duplicates: int


def engagement(likes: int, shares: int, replies: int) -> int:
    """Engagement of a post: likes + shares + replies, equally weighted."""
    return likes + shares + replies


def influence(reach: int, engagement_count: int) -> float:
    """Reach × engagement, log-scaled: log10(1 + reach) + log10(1 + engagement)."""
    return math.log10(1 + max(reach, 0)) + math.log10(1 + max(engagement_count, 0))


def parse_timestamp(value: str) -> datetime:
    """An ISO 8601 timestamp WITH a UTC offset (`Z` or `+02:00`), as tz-aware UTC.

    A time without an offset is refused rather than guessed: a monitoring tool in another
    zone would otherwise shift every post by hours and corrupt the digest windows.
    """
    text = value.strip()
    if not text:
        raise ValueError("is empty")
    try:
        parsed = datetime.fromisoformat(text[:-1] + "+00:00" if text[-1:] in "zZ" else text)
    except ValueError:
        raise ValueError("is not an ISO 8601 timestamp (like 2024-05-01T12:30:00Z)") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError("has no UTC offset; add Z or +hh:mm (like 2024-05-01T12:30:00Z)")
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+01:00 is in year 0 in UTC, 9999-12-31T23:59-01:00 in 10000
        raise ValueError("is out of range: in UTC it falls before the year 1 or after 9999") from None


def unstorable_text(value: str) -> str | None:
    """Why `value` cannot be stored as text on every supported database, or None when it can.

    A lone UTF-16 surrogate (JSON allows `"\\ud83d"`) has no UTF-8 encoding, and PostgreSQL
    text cannot hold a NUL character; both are refused on every database so the answer is the same.
    """
    if "\x00" in value:
        return "must not contain a NUL character (\\u0000)"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        return (f"is not valid Unicode: a lone surrogate (\\u{ord(value[exc.start]):04x}) "
                f"at character {exc.start + 1}")
    return None


def _text_field(item: dict[str, Any], name: str, limit: int, errors: list[tuple[str, str]],
                *, required: bool, allow_int: bool = False) -> str | None:
    value = item.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            errors.append((name, "is required"))
        return None
    if allow_int and isinstance(value, int | LongNumber) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        errors.append((name, "must be a string"))
        return None
    problem = unstorable_text(value)
    if problem is not None:
        errors.append((name, problem))
        return None
    value = value.strip()
    if len(value) > limit:
        errors.append((name, f"is longer than {limit:,} characters"))
        return None
    return value


def _count_field(item: dict[str, Any], name: str, errors: list[tuple[str, str]], *, lenient: bool) -> int:
    value = item.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        return 0
    if lenient and isinstance(value, str):
        try:
            value = int(value.strip().replace(",", "").replace("_", ""))
        except ValueError:
            errors.append((name, "must be a whole number"))
            return 0
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, LongNumber) or (isinstance(value, int) and not 0 <= value <= MAX_COUNT):
        errors.append((name, f"must be between 0 and {MAX_COUNT:,}"))
        return 0
    if not isinstance(value, int) or isinstance(value, bool):
        errors.append((name, "must be a whole number"))
        return 0
    return value


def validate_mention(
    item: Any, index: int, *, lenient: bool = False
) -> tuple[NewMention | None, list[FieldError]]:
    """Check one submitted mention; `lenient` accepts counts written as text (CSV cells).

    Unknown fields are ignored, so a monitoring tool may send more than War Room keeps.
    """
    if not isinstance(item, dict):
        return None, [FieldError(index, "(item)", "must be a JSON object")]
    problems: list[tuple[str, str]] = []
    platform = _text_field(item, "platform", 40, problems, required=True)
    external_id = _text_field(item, "id", 200, problems, required=True, allow_int=True)
    text = _text_field(item, "text", MAX_TEXT_CHARS, problems, required=True)
    created_at = None
    raw_created = item.get("created_at")
    if raw_created is None or (isinstance(raw_created, str) and not raw_created.strip()):
        problems.append(("created_at", "is required"))
    elif not isinstance(raw_created, str):
        problems.append(("created_at", "must be an ISO 8601 string"))
    elif (unstorable := unstorable_text(raw_created)) is not None:
        problems.append(("created_at", unstorable))
    else:
        try:
            created_at = parse_timestamp(raw_created)
        except ValueError as exc:
            problems.append(("created_at", str(exc)))
    optional = {name: _text_field(item, name, limit, problems, required=False)
                for name, limit in OPTIONAL_TEXT_FIELDS.items()}
    url = optional["url"]
    if url is not None and not url.lower().startswith(("http://", "https://")):
        problems.append(("url", "must be an http(s) URL"))
    counts = {name: _count_field(item, name, problems, lenient=lenient) for name in COUNT_FIELDS}
    errors = [FieldError(index, field, message) for field, message in problems]
    if errors:
        return None, errors
    assert platform is not None and external_id is not None and text is not None and created_at is not None
    return NewMention(
        platform=platform.lower(), external_id=external_id, text=text, created_at=created_at,
        url=url, author=optional["author"], lang=optional["lang"], **counts,
    ), []


def _existing_keys(session: Session, mentions: Sequence[NewMention]) -> set[tuple[str, str]]:
    by_platform: dict[str, list[str]] = {}
    for mention in mentions:
        by_platform.setdefault(mention.platform, []).append(mention.external_id)
    found: set[tuple[str, str]] = set()
    for platform, ids in by_platform.items():
        query = select(Mention.external_id).where(Mention.platform == platform, Mention.external_id.in_(ids))
        found.update((platform, external_id) for external_id in session.scalars(query))
    return found


def _insert_statement(dialect: str) -> Any:
    # Dedupe happens in the database, so two requests racing with the same post store it once
    # and each counts what it really inserted (RETURNING lists only the rows that went in).
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    if dialect not in ("postgresql", "sqlite"):
        raise RuntimeError(f"mention storage supports SQLite and PostgreSQL, not {dialect}")
    # Core insert on the table: the ORM's bulk path costs more per row than the database does.
    table: Table = Mention.__table__  # type: ignore[assignment]
    statement = insert(table).on_conflict_do_nothing(index_elements=["platform", "external_id"])
    return statement.returning(table.c.id)


def store_mentions(
    session: Session,
    mentions: Sequence[NewMention],
    *,
    source: str,
    progress: Callable[[int], None] | None = None,
) -> StoreResult:
    """Score and insert `mentions` in batches; each (platform, id) is stored once, duplicates are counted.

    Runs in the caller's transaction. `progress` is told how many mentions have been handled so far.
    """
    unique: dict[tuple[str, str], NewMention] = {}
    for mention in mentions:
        unique.setdefault(mention.key, mention)
    statement = _insert_statement(session.get_bind().dialect.name)
    accepted = 0
    handled = len(mentions) - len(unique)
    # Inserting in key order makes concurrent batches take row locks in the same order (no deadlock).
    batch_items = sorted(unique.values(), key=lambda mention: mention.key)
    now = utcnow()
    for start in range(0, len(batch_items), INSERT_BATCH):
        batch = batch_items[start : start + INSERT_BATCH]
        # Skip scoring posts we already have (webhook retries resend whole batches).
        known = _existing_keys(session, batch)
        fresh = [mention for mention in batch if mention.key not in known]
        if fresh:
            scores = score_texts([mention.text for mention in fresh])
            rows = [
                {
                    "platform": m.platform, "external_id": m.external_id, "text": m.text, "url": m.url,
                    "author": m.author, "author_followers": m.author_followers, "likes": m.likes,
                    "shares": m.shares, "replies": m.replies, "lang": m.lang, "created_at": m.created_at,
                    "ingested_at": now, "source": source,
                    "sentiment_label": score.label, "sentiment_score": float(score.score),
                }
                for m, score in zip(fresh, scores, strict=True)
            ]
            accepted += len(insert_mention_rows(session, statement, rows))
        handled += len(batch)
        if progress is not None:
            progress(handled)
    MENTIONS_INGESTED.labels(source).inc(accepted)
    return StoreResult(accepted=accepted, duplicates=len(mentions) - accepted)


# ---- which mentions belong where --------------------------------------------------------------


def like_pattern(keyword: str) -> str:
    """A LIKE pattern matching `keyword` anywhere, with LIKE's own wildcards taken literally."""
    escaped = keyword.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def contains_any(dialect: str, keywords: Iterable[str]) -> ColumnElement[bool]:
    """SQL: the text contains any keyword, case-insensitively.

    PostgreSQL: `lower(text) LIKE ANY (array)`, one pass that measured ~2.5× faster than OR-ed
    ILIKEs (its LIKE escapes with a backslash by default). SQLite: OR-ed LIKEs, which already
    ignore ASCII case.
    """
    unique = list(dict.fromkeys(k.lower() for k in keywords if k))
    if not unique:
        return false()
    if dialect == "postgresql":
        patterns = bindparam("keywords", [like_pattern(k) for k in unique], type_=ARRAY(String), unique=True)
        return func.lower(Mention.text).like(any_(patterns))
    return or_(*[contains(dialect, keyword) for keyword in unique])


def contains(dialect: str, keyword: str) -> ColumnElement[bool]:
    """SQL: the mention's text contains `keyword`, case-insensitively."""
    pattern = like_pattern(keyword.lower())
    if dialect == "postgresql":
        return func.lower(Mention.text).like(pattern, escape="\\")
    # SQLite's LIKE is already case-insensitive for ASCII; lower() round every row would cost more.
    return Mention.text.like(pattern, escape="\\")


def incident_keywords(plan: Plan, playbook: str | None) -> list[str]:
    """The brand's keywords plus the playbook's, lower-cased, without repeats."""
    keywords = list(plan.brand.keywords)
    if playbook and playbook in plan.playbooks:
        keywords += plan.playbooks[playbook].keywords
    return list(dict.fromkeys(keyword.lower() for keyword in keywords if keyword))


@dataclass(frozen=True)
class IncidentScope:
    """What selects an incident's mentions: keywords and the earliest post time."""

    incident_id: int
    keywords: list[str]
    since: datetime
    opened_at: datetime


def incident_scope(plan: Plan, incident: Incident) -> IncidentScope:
    """The keywords and time bound of an incident's mentions."""
    return IncidentScope(
        incident_id=incident.id,
        keywords=incident_keywords(plan, incident.playbook),
        since=incident.opened_at - timedelta(minutes=plan.mentions.lookback_minutes),
        opened_at=incident.opened_at,
    )


@dataclass(frozen=True)
class IncidentWindow:
    """A window of an incident's mentions ending at `end`, and the window of the same length before it,
    both within the incident's scope (its keywords, posted no earlier than the look-back before opening)."""

    incident: Incident
    scope: IncidentScope
    dialect: str
    minutes: int
    start: datetime
    end: datetime
    keywords: ColumnElement[bool]  # the scope's keywords as SQL
    current: ColumnElement[bool]  # the incident's mentions in [start, end)
    previous: ColumnElement[bool]  # the incident's mentions in the window before

    @property
    def width(self) -> timedelta:
        return timedelta(minutes=self.minutes)


def incident_window(session: Session, plan: Plan, incident_id: int, window_end: datetime,
                    window_minutes: int | None = None) -> IncidentWindow:
    """The incident's window ending at `window_end`: `window_minutes` long, else its severity's digest
    cadence. LookupError when there is no such incident."""
    incident = session.get(Incident, incident_id)
    if incident is None:
        raise LookupError(f"no incident {incident_id}")
    minutes = window_minutes or plan.digest_minutes(incident.severity)
    dialect = session.get_bind().dialect.name
    scope = incident_scope(plan, incident)
    width = timedelta(minutes=minutes)
    start = window_end - width
    keywords = contains_any(dialect, scope.keywords)
    return IncidentWindow(
        incident=incident, scope=scope, dialect=dialect, minutes=minutes, start=start, end=window_end,
        keywords=keywords,
        current=and_(Mention.created_at >= max(start, scope.since), Mention.created_at < window_end, keywords),
        previous=and_(Mention.created_at >= max(start - width, scope.since), Mention.created_at < start,
                      keywords),
    )


def words_of(text: str) -> list[str]:
    """Lower-cased words of `text` (letters, inner apostrophes and hyphens), in order."""
    return [word.strip("'’-") for word in _WORD.findall(text.lower())]


def significant_words(claim: str, brand_keywords: Iterable[str] = ()) -> list[str]:
    """The words of a rumour's claim that identify it: ≥ 3 letters, not stop words, not brand keywords."""
    brand_words = {word for keyword in brand_keywords for word in words_of(keyword)}
    chosen = [w for w in words_of(claim) if len(w) >= 3 and w not in STOP_WORDS and w not in brand_words]
    return list(dict.fromkeys(chosen))


def required_matches(word_count: int) -> int:
    """How many of a claim's significant words a post must contain: two-thirds, rounded up."""
    return math.ceil(word_count * 2 / 3)


def rumour_condition(dialect: str, words: Sequence[str]) -> ColumnElement[bool]:
    """SQL: the mention's text contains at least two-thirds of `words`."""
    if not words:
        return false()
    hits = sum((case((contains(dialect, word), 1), else_=0) for word in words), literal(0, Integer))
    return hits >= required_matches(len(words))


def influence_rank() -> ColumnElement[float]:
    """SQL ordering key for influence: (1 + reach) × (1 + engagement), as a float so it cannot overflow."""
    return (cast(Mention.author_followers, Float) + 1.0) * (
        cast(Mention.likes + Mention.shares + Mention.replies, Float) + 1.0
    )
