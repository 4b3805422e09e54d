"""POST /mentions: authentication, validation and storage of pushed mentions (bot.web limits the size).

The body is one mention object, or `{"mentions": [...]}` with up to MAX_BATCH of them. A batch
with any invalid item stores nothing and answers 400 with every `{index, field, message}`.
`created_at` must carry a UTC offset (`Z` or `+hh:mm`); a naive time is refused, not guessed.
Arrays and objects nest MAX_DEPTH deep at most, counted before parsing (json.loads recurses, and
raises RecursionError about a thousand deep); a field nested deeper is named in a field error.
"""

from __future__ import annotations

import json
import re
from array import array
from collections.abc import Callable
from itertools import accumulate
from typing import Any

from bot.background.runtime import Runtime
from bot.infra.bearer import bearer_matches
from bot.infra.metrics import count_refused_mentions
from bot.listening.escalations import queue_escalations
from bot.listening.mentions import FieldError, NewMention, json_int, store_mentions, validate_mention
from models import transaction, utcnow

MAX_BATCH = 1000
# A batch's mentions are 3 deep ({"mentions": [{...}]}): room for fields War Room ignores to nest.
MAX_DEPTH = 32
TOO_DEEP = f"is nested too deep: a body nests arrays and objects {MAX_DEPTH} levels at most"
_STRING = r'"[^"\\]*(?:\\.[^"\\]*)*"'
_JSON_STRING = re.compile(_STRING, re.DOTALL)
_BRACKET_STEP = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")  # +1, +1, -1, -1 as signed bytes
_NOT_BRACKET = bytes(sorted(set(range(256)) - set(b"[]{}")))
# A string (an object's key when a colon follows), a run of openers or closers, or a comma.
_TOKEN = re.compile(rf"({_STRING})(\s*:)?|[\[{{]+|[\]}}]+|,", re.DOTALL)
# {"mentions": [{"field": ...}]}: the levels that name a mention's field.
_FIELD_LEVELS = 3


def nesting_depth(text: str) -> int:
    """How many arrays and objects `text` has open at once at most (strings skipped), at C speed: a
    regex, a byte translation, then a running sum of +1/-1 over the brackets left."""
    skeleton = _JSON_STRING.sub("", text).encode("utf-8", "surrogatepass")
    steps = skeleton.translate(_BRACKET_STEP, _NOT_BRACKET)
    return max(accumulate(array("b", steps)), default=0)


def _key(quoted: str) -> str:
    try:
        return str(json.loads(quoted))
    except ValueError:  # a bad escape: the body is not JSON anyway
        return quoted


def _mention_field(path: list[int | str]) -> tuple[int, str] | None:
    """(index, field) of the mention field that `path` (the index or key read at each level) is in."""
    if path[0] == "mentions" and isinstance(path[1], int):
        return path[1], path[2] if isinstance(path[2], str) else "(item)"
    if isinstance(path[0], str) and path[0] != "mentions":
        return 0, path[0]
    return None


def _too_deep(text: str) -> dict[str, Any]:
    """The 400 payload for a body nested deeper than MAX_DEPTH, naming the first mention field that is."""
    path: list[int | str] = []  # the index or key being read at each of the field levels
    depth = 0
    for token in _TOKEN.finditer(text):
        mark = token.group()
        if mark[0] in "[{":
            path += [0 if opener == "[" else "" for opener in mark[: max(_FIELD_LEVELS - depth, 0)]]
            depth += len(mark)
            if depth > MAX_DEPTH:
                break
        elif mark[0] in "]}":
            depth = max(depth - len(mark), 0)
            del path[depth:]
        elif len(path) == depth > 0:  # a comma or a key at a field level
            if mark == "," and isinstance(path[-1], int):
                path[-1] += 1
            elif token.group(2) and isinstance(path[-1], str):
                path[-1] = _key(token.group(1))
    where = _mention_field(path) if len(path) == _FIELD_LEVELS else None
    if where is None:
        return {"error": f"body {TOO_DEEP}"}
    error = FieldError(where[0], where[1], TOO_DEEP)
    return {"error": f"mention {error.index} is nested too deep; nothing was stored", "errors": [error.as_dict()]}


def parse_ingest_body(body: bytes) -> tuple[list[NewMention] | None, int, dict[str, Any] | None]:
    """Decode and validate a body: (mentions, status, error payload) — mentions is None on error."""
    try:
        text = body.decode(json.detect_encoding(body), "surrogatepass")  # as json.loads decodes bytes
    except UnicodeDecodeError:
        return None, 400, {"error": "body is not UTF-8 JSON"}
    if nesting_depth(text) > MAX_DEPTH:
        return None, 400, _too_deep(text)
    try:
        # Integers too long for any field stay digits: int() of 5,000 of them raises ValueError.
        data = json.loads(text, parse_int=json_int)
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
    read_body: Callable[[], bytes],
) -> tuple[int, dict[str, Any]]:
    """Answer one webhook request as (HTTP status, JSON body)."""
    token = runtime.settings.warroom_ingest_token
    if token is None:
        return 503, {"error": "mention ingest is disabled: WARROOM_INGEST_TOKEN is not set"}
    if not bearer_matches(authorization, token):
        return 401, {"error": "missing or wrong bearer token"}
    mentions, status, problem = parse_ingest_body(read_body())
    if mentions is None:
        assert problem is not None
        return status, problem
    with transaction(runtime.sessions) as session:
        result = store_mentions(session, mentions, source="webhook")
        queue_escalations(session, runtime.plan, mentions, utcnow())
    return 202, {"accepted": result.accepted, "duplicates": result.duplicates}
