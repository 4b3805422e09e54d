"""`Recent`: answers kept for a moment in one process (the `/crisis status` summaries)."""

from __future__ import annotations

import time

from bot.infra.recent import Recent


def test_a_value_is_made_again_once_it_is_older_than_its_seconds() -> None:
    made: list[int] = []

    def make() -> int:
        made.append(len(made))
        return len(made)

    recent: Recent[str, int] = Recent(seconds=0.2)
    assert recent.get("a", make) == 1
    assert recent.get("a", make) == 1  # kept
    assert recent.get("b", make) == 2  # another key is made on its own
    time.sleep(0.25)
    assert recent.get("a", make) == 3
    assert made == [0, 1, 2]


def test_it_keeps_at_most_size_values_dropping_the_oldest_first() -> None:
    recent: Recent[int, int] = Recent(seconds=60, size=3)
    for key in range(5):
        recent.get(key, lambda key=key: key * 10)
    assert sorted(recent._values) == [2, 3, 4]
    assert recent.get(4, lambda: -1) == 40  # still kept: not made again


def test_expired_values_go_before_fresh_ones() -> None:
    recent: Recent[str, str] = Recent(seconds=0.2, size=2)
    recent.get("old", lambda: "old")
    time.sleep(0.25)
    recent.get("fresh", lambda: "fresh")
    recent.get("new", lambda: "new")
    assert sorted(recent._values) == ["fresh", "new"]
