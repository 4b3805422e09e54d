"""Answers a process may give again for a moment instead of reading them again."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Recent(Generic[K, V]):
    """Values kept for `seconds` of real time in this process, at most `size` of them.

    For answers that may be a moment old: a war room where everyone types `/crisis status` at once gets
    one read of the incident a second, not one each. Work after the ack runs in the worker (another
    process), so nothing here can be told of a change; the bound on how old an answer is, is `seconds`.
    """

    def __init__(self, seconds: float, size: int = 256) -> None:
        self.seconds = seconds
        self.size = size
        self._values: dict[K, tuple[float, V]] = {}
        self._lock = threading.Lock()

    def get(self, key: K, make: Callable[[], V]) -> V:
        """The value kept for `key` if it is younger than `seconds`, else `make()`'s, kept from now."""
        now = time.monotonic()
        with self._lock:
            kept = self._values.get(key)
        if kept is not None and now - kept[0] < self.seconds:
            return kept[1]
        value = make()  # outside the lock: two requests that miss at once both read, neither waits
        with self._lock:
            if key not in self._values and len(self._values) >= self.size:
                self._drop_oldest(now)
            self._values[key] = (now, value)
        return value

    def _drop_oldest(self, now: float) -> None:
        expired = [key for key, (made, _) in self._values.items() if now - made >= self.seconds]
        for key in expired or [min(self._values, key=lambda key: self._values[key][0])]:
            del self._values[key]
