"""A small per-process LRU with a time-to-live.

Only for values that cannot go stale: a verified token (its signature never changes), a
bundle by its ETag (an ETag always names the same bytes). Who a caller is and a bundle's
current ETag are read from the database with each request instead (inspections/caching.py
says why).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class LruCache(Generic[K, V]):
    """A small LRU with a time-to-live, for one process."""

    def __init__(self, maxsize: int, ttl_s: float) -> None:
        self.maxsize, self.ttl = maxsize, ttl_s
        self._data: OrderedDict[K, tuple[float, V]] = OrderedDict()

    def get(self, key: K) -> V | None:
        item = self._data.get(key)
        if item is None:
            return None
        if item[0] < time.monotonic():
            del self._data[key]
            return None
        self._data.move_to_end(key)
        return item[1]

    def put(self, key: K, value: V) -> None:
        self._data[key] = (time.monotonic() + self.ttl, value)
        self._data.move_to_end(key)
        while len(self._data) > self.maxsize:
            self._data.popitem(last=False)

    def pop(self, key: K) -> None:
        self._data.pop(key, None)

    def evict_where(self, predicate: Callable[[K, V], bool]) -> None:
        for key in [k for k, (_, v) in self._data.items() if predicate(k, v)]:
            del self._data[key]

    def clear(self) -> None:
        self._data.clear()
