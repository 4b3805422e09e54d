"""POST /mentions: authentication, size limit, validation and storage of pushed mentions."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Any

from bot.runtime import Runtime

MAX_BODY_BYTES = 5 * 1024 * 1024


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
    scheme, _, given = authorization.partition(" ")
    expected = token.get_secret_value().encode()
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
        return 401, {"error": "missing or wrong bearer token"}
    if content_length is not None and content_length > MAX_BODY_BYTES:
        return 413, {"error": f"body is larger than {MAX_BODY_BYTES} bytes"}
    body = read_body()
    if len(body) > MAX_BODY_BYTES:
        return 413, {"error": f"body is larger than {MAX_BODY_BYTES} bytes"}
    return 501, {"error": "mention ingest is not implemented yet"}
