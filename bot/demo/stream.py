"""A drill's recorded mention stream: read and validated whole before anything starts.

A stream is JSON lines (one webhook mention object per line) or CSV (the webhook's fields as columns,
as `warroom mentions import` reads them): `platform`, `id`, `text`, `created_at` with a UTC offset, and
optionally `url`, `author`, `author_followers`, `likes`, `shares`, `replies`, `lang`. Extra fields or
columns are ignored (the dev sets' `label` and `source`). Every bad row is named by its line, and a
stream with any bad row is refused: nothing is replayed.

`defaults` fill a field the file lacks or leaves empty: the dev sets have no `platform` column, so
`--platform x` (they are tweets) makes them a stream as they are.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bot.infra.errors import CommandError
from bot.listening.mention_import import read_mentions
from bot.listening.mentions import NewMention, validate_mention

MAX_REPORTED_PROBLEMS = 20
JSON_LINES_SUFFIXES = (".jsonl", ".ndjson", ".json")


class StreamError(CommandError):
    """The stream cannot be replayed; the message names the file and every bad line (up to 20)."""


@dataclass(frozen=True)
class Stream:
    """The posts of a stream in time order (ties keep the file's order)."""

    path: Path
    posts: tuple[NewMention, ...]

    @property
    def start(self) -> datetime:
        return self.posts[0].created_at

    @property
    def end(self) -> datetime:
        return self.posts[-1].created_at

    @property
    def span(self) -> timedelta:
        return self.end - self.start

    def shifted(self, start: datetime) -> tuple[NewMention, ...]:
        """The posts moved in time so the first one is at `start`, keeping their spacing."""
        offset = start - self.start
        return tuple(replace(post, created_at=post.created_at + offset) for post in self.posts)


def webhook_item(post: NewMention) -> dict[str, Any]:
    """A post as POST /mentions takes it."""
    item: dict[str, Any] = {
        "platform": post.platform, "id": post.external_id, "text": post.text,
        "created_at": post.created_at.isoformat(),
        "author_followers": post.author_followers, "likes": post.likes, "shares": post.shares,
        "replies": post.replies,
    }
    for name in ("url", "author", "lang"):
        if getattr(post, name) is not None:
            item[name] = getattr(post, name)
    return item


def _read_json_lines(path: Path, defaults: dict[str, str]) -> tuple[list[NewMention], list[str]]:
    posts: list[NewMention] = []
    problems: list[str] = []
    try:
        with path.open(encoding="utf-8-sig") as lines:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                try:
                    item = json.loads(line)
                except json.JSONDecodeError as exc:
                    problems.append(f"line {number}: not valid JSON ({exc.msg}, column {exc.colno})")
                    continue
                if isinstance(item, dict):
                    item = {**defaults, **{key: value for key, value in item.items() if value not in (None, "")}}
                post, errors = validate_mention(item, number)
                problems.extend(f"line {number}: {error.field}: {error.message}" for error in errors)
                if post is not None:
                    posts.append(post)
    except UnicodeDecodeError:
        raise StreamError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise StreamError(f"{path}: cannot read the file ({exc.strerror})") from None
    return posts, problems


def _is_json_lines(path: Path) -> bool:
    if path.suffix.lower() in JSON_LINES_SUFFIXES:
        return True
    if path.suffix.lower() == ".csv":
        return False
    try:
        with path.open("rb") as raw:
            head = raw.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    except OSError as exc:
        raise StreamError(f"{path}: cannot read the file ({exc.strerror})") from None
    return head.startswith(b"{")


def load_stream(path: Path, defaults: dict[str, str] | None = None) -> Stream:
    """Read and validate a whole stream file; StreamError lists the bad lines and nothing is replayed."""
    defaults = defaults or {}
    try:
        posts, problems = (_read_json_lines(path, defaults) if _is_json_lines(path)
                           else read_mentions(path, defaults))
    except StreamError:
        raise
    except CommandError as exc:  # the CSV reader's one-line answers (unreadable, no header, bad CSV)
        raise StreamError(str(exc)) from None
    if problems:
        shown = [f"{path}: {problem}" for problem in problems[:MAX_REPORTED_PROBLEMS]]
        if len(problems) > MAX_REPORTED_PROBLEMS:
            shown.append(f"{path}: …and {len(problems) - MAX_REPORTED_PROBLEMS} more problems")
        shown.append(f"{path}: {len(problems)} problem(s); nothing was replayed. Fix the lines above and run it again.")
        raise StreamError("\n".join(shown))
    if not posts:
        raise StreamError(f"{path}: no posts to replay")
    return Stream(path, tuple(sorted(posts, key=lambda post: post.created_at)))
