"""The bearer-token check shared by the routes that take one (POST /mentions, GET /metrics)."""

from __future__ import annotations

import hmac

from pydantic import SecretStr


def bearer_matches(authorization: str, token: SecretStr) -> bool:
    """Whether an `Authorization` header carries `Bearer <token>`."""
    scheme, _, given = authorization.partition(" ")
    # compare_digest takes as long for a near miss as for a far one, so the token cannot be guessed by timing.
    matches = hmac.compare_digest(given.strip().encode(), token.get_secret_value().encode())
    return scheme.lower() == "bearer" and matches
