"""BM25 order for free-text cohorts: every hit ranked once, then paged by position.

`search_after` on `_score` is unreliable across servers: a server may report scores
rounded to float32 but compare the unrounded ones, so ties after a page boundary
vanish, and scores differ per shard. So,
as the embedded index does, a text cohort's hits are collected once (`_id`, `_score`,
scanned in row order with `search_after` on `row_key`, which every server pages
exactly), ordered by score (ties in row order), and kept in a small LRU per served
generation; a page is then one `ids` lookup.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from hub.index.elastic.dsl import ROW_ORDER, Query

SCAN_PAGE = 10_000
CACHED_RANKINGS = 8


@dataclass(frozen=True)
class Ranking:
    """Series ids, best first, and their scores."""

    ids: list[str]
    scores: list[float]

    def window(self, start: int, size: int, descending: bool) -> list[tuple[str, float]]:
        """`size` (id, score) pairs from position `start`, best first or (ascending) the
        whole ranking reversed, as the embedded index does."""
        n = len(self.ids)
        if descending:
            positions = range(start, min(start + size, n))
        else:
            positions = range(n - 1 - start, max(n - 1 - start - size, -1), -1)
        return [(self.ids[i], self.scores[i]) for i in positions]


Search = Callable[..., Awaitable[dict[str, Any]]]


async def rank(search: Search, query: Query) -> Ranking:
    """Every hit of `query` in BM25 order (ties in row order)."""
    rows: list[tuple[float, str, str]] = []
    after: list[Any] | None = None
    while True:
        answer = await search(
            query=query,
            sort=ROW_ORDER,
            size=SCAN_PAGE,
            search_after=after,
            track_scores=True,
            track_total_hits=False,
            source=False,
        )
        hits = answer["hits"]["hits"]
        rows += [(-float(h["_score"]), h["sort"][0], h["_id"]) for h in hits]
        if len(hits) < SCAN_PAGE:
            break
        after = hits[-1]["sort"]
    rows.sort()
    return Ranking([r[2] for r in rows], [-r[0] for r in rows])


class RankingCache:
    """The last few rankings, by (generation, question); safe across threads."""

    def __init__(self, size: int = CACHED_RANKINGS) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._items: OrderedDict[tuple[str, str], Ranking] = OrderedDict()

    def get(self, key: tuple[str, str]) -> Ranking | None:
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
            return found

    def put(self, key: tuple[str, str], ranking: Ranking) -> None:
        with self._lock:
            self._items[key] = ranking
            while len(self._items) > self.size:
                self._items.popitem(last=False)
