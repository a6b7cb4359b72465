"""What a process remembers to spare a round trip, at most ``limit`` entries: the oldest
(first kept) is dropped first."""

from __future__ import annotations

from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Bounded(Generic[K, V]):
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._kept: dict[K, V] = {}

    def get(self, key: K) -> V | None:
        return self._kept.get(key)

    def keep(self, key: K, value: V) -> V:
        self._kept[key] = value
        while len(self._kept) > self.limit:
            del self._kept[next(iter(self._kept))]
        return value
