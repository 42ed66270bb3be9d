"""A small thread-safe memo of expensive answers (row selections, BM25 rankings).

Keys name everything the answer depends on (generation, live version, question), so
entries never go stale; the least recently used fall out when the memo is full.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from cachetools import LRUCache

T = TypeVar("T")


class Memo:
    def __init__(self, entries: int) -> None:
        self._cache: LRUCache[Hashable, Any] = LRUCache(maxsize=entries)
        self._lock = threading.Lock()

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        """The remembered answer for `key`, computed (outside the lock) when missing; two
        threads asking at once may both compute it, and the answers are the same."""
        with self._lock:
            found = self._cache.get(key, _MISSING)
        if found is not _MISSING:
            return found  # type: ignore[no-any-return]
        value = compute()
        with self._lock:
            self._cache[key] = value
        return value


_MISSING = object()
