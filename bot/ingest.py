"""POST /mentions: authentication, size limit, validation and storage of pushed mentions.

The body is one mention object, or `{"mentions": [...]}` with up to MAX_BATCH of them. A batch
with any invalid item stores nothing and answers 400 with every `{index, field, message}`.
`created_at` must carry a UTC offset (`Z` or `+hh:mm`); a naive time is refused, not guessed.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable
from typing import Any

from bot.mentions import FieldError, NewMention, store_mentions, validate_mention
from bot.metrics import count_refused_mentions
from bot.runtime import Runtime
from models import transaction

MAX_BODY_BYTES = 5 * 1024 * 1024
MAX_BATCH = 1000


def _authorised(authorization: str, expected: bytes) -> bool:
    scheme, _, given = authorization.partition(" ")
    # compare_digest takes as long for a near miss as for a far one, so the token cannot be guessed by timing.
    matches = hmac.compare_digest(given.strip().encode(), expected)
    return scheme.lower() == "bearer" and matches


def parse_ingest_body(body: bytes) -> tuple[list[NewMention] | None, int, dict[str, Any] | None]:
    """Decode and validate a body: (mentions, status, error payload) — mentions is None on error."""
    try:
        data = json.loads(body)
    except UnicodeDecodeError:
        return None, 400, {"error": "body is not UTF-8 JSON"}
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        return None, 400, {"error": f"body is not valid JSON: {exc.msg} ({where})"}
    if isinstance(data, dict) and "mentions" in data:
        items = data["mentions"]
        if not isinstance(items, list):
            return None, 400, {"error": "`mentions` must be a JSON array of mention objects"}
        if len(items) > MAX_BATCH:
            count_refused_mentions("webhook", too_many=len(items))
            return None, 400, {"error": f"a batch holds at most {MAX_BATCH:,} mentions; got {len(items):,}"}
    elif isinstance(data, dict):
        items = [data]
    else:
        return None, 400, {"error": 'body must be a mention object or {"mentions": [...]}'}
    mentions: list[NewMention] = []
    errors: list[FieldError] = []
    for index, item in enumerate(items):
        mention, problems = validate_mention(item, index)
        if mention is not None:
            mentions.append(mention)
        errors.extend(problems)
    if errors:
        bad = len({error.index for error in errors})
        count_refused_mentions("webhook", invalid=bad, refused_with_them=len(items) - bad)
        return None, 400, {
            "error": f"{bad} of {len(items)} mentions are invalid; nothing was stored",
            "errors": [error.as_dict() for error in errors],
        }
    return mentions, 202, None


def handle_ingest_request(
    runtime: Runtime,
    *,
    authorization: str,
    content_length: int | None,
    read_body: Callable[[], bytes],
) -> tuple[int, dict[str, Any]]:
    """Answer one webhook request as (HTTP status, JSON body)."""
    token = runtime.settings.warroom_ingest_token
    if token is None:
        return 503, {"error": "mention ingest is disabled: WARROOM_INGEST_TOKEN is not set"}
    if not _authorised(authorization, token.get_secret_value().encode()):
        return 401, {"error": "missing or wrong bearer token"}
    if content_length is not None and content_length > MAX_BODY_BYTES:
        return 413, {"error": f"body is larger than {MAX_BODY_BYTES:,} bytes"}
    body = read_body()
    if len(body) > MAX_BODY_BYTES:
        return 413, {"error": f"body is larger than {MAX_BODY_BYTES:,} bytes"}
    mentions, status, problem = parse_ingest_body(body)
    if mentions is None:
        assert problem is not None
        return status, problem
    with transaction(runtime.sessions) as session:
        result = store_mentions(session, mentions, source="webhook")
    return 202, {"accepted": result.accepted, "duplicates": result.duplicates}
