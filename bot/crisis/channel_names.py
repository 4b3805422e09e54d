"""Naming incident channels, and the key that makes two open requests "the same". Pure functions."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from datetime import date

# Slack channel names: lowercase letters, digits, hyphens and underscores, at most 80 characters.
CHANNEL_NAME_MAX = 80
FALLBACK_SLUG = "incident"
_NOT_ALLOWED = re.compile(r"[^a-z0-9]+")
_SPACES = re.compile(r"\s+")


def slugify(title: str, max_length: int = CHANNEL_NAME_MAX) -> str:
    """`Flights delayed at LHR!` → `flights-delayed-at-lhr`; accents folded, never empty, cut on a word."""
    folded = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode("ascii").lower()
    slug = _NOT_ALLOWED.sub("-", folded).strip("-")
    if len(slug) > max_length:
        cut = slug[:max_length]
        # Prefer ending on a whole word when one fits in the first half.
        if "-" in cut and slug[max_length] != "-" and cut.rfind("-") >= max_length // 2:
            cut = cut[: cut.rfind("-")]
        slug = cut.strip("-")
    return slug or FALLBACK_SLUG[:max_length] or "x"


def channel_name(prefix: str, day: date, title: str, attempt: int = 1) -> str:
    """`<prefix>-<yyyymmdd>-<slug>`, `-2`, `-3`… appended for later attempts, always ≤ 80 characters."""
    head = f"{prefix}-{day:%Y%m%d}-"
    suffix = f"-{attempt}" if attempt > 1 else ""
    room = CHANNEL_NAME_MAX - len(head) - len(suffix)
    return head + slugify(title, max(1, room)) + suffix


def normalise_title(title: str) -> str:
    """The title as compared for "the same open": case-folded, whitespace collapsed."""
    return _SPACES.sub(" ", title).strip().casefold()


def open_request_key(opener: str, title: str, day: date) -> str:
    """Same opener + same title + same day → the same key (Incident.request_key)."""
    digest = hashlib.sha256(f"{opener}\n{normalise_title(title)}\n{day:%Y%m%d}".encode()).hexdigest()
    return f"open:{digest[:48]}"
