"""The memo behind row selections and rankings, and the lock-free cached property."""

from __future__ import annotations

import threading
import time

import numpy as np

from hub.index.embedded.memo import Memo, once


def test_memo_is_bounded_by_the_bytes_it_holds() -> None:
    memo = Memo(max_bytes=10_000)
    for i in range(50):  # 50 arrays of 4,000 bytes: at most two fit
        memo.get(("rows", i), lambda: np.zeros(500, dtype=np.int64))
    held = sum(1 for i in range(50) if memo.get(("rows", i), lambda: None) is not None)
    assert held <= 2


def test_memo_answers_a_key_once_and_refuses_an_entry_larger_than_itself() -> None:
    memo = Memo(max_bytes=1_000)
    calls = []

    def compute() -> np.ndarray:
        calls.append(1)
        return np.arange(10)

    assert memo.get("k", compute) is memo.get("k", compute)
    assert len(calls) == 1
    big = memo.get("big", lambda: np.zeros(10_000))
    assert len(big) == 10_000
    assert memo.get("big", lambda: "recomputed") == "recomputed"


class Slow:
    def __init__(self) -> None:
        self.calls = 0

    @once
    def value(self) -> int:
        """Slow to compute."""
        self.calls += 1
        time.sleep(0.2)
        return 42


def test_once_computes_per_instance_without_serialising_instances() -> None:
    """functools.cached_property in Python 3.11 holds one lock for every instance: eight
    threads each computing their own instance would take 8 x 0.2 s."""
    objects = [Slow() for _ in range(8)]
    started = time.perf_counter()
    threads = [threading.Thread(target=lambda o=o: o.value) for o in objects]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert time.perf_counter() - started < 0.8
    assert all(o.value == 42 and o.calls == 1 for o in objects)
    assert Slow.value.__doc__ == "Slow to compute."


def test_document_cache_reads_each_row_once_and_hands_out_copies() -> None:
    from hub.index.embedded.memo import DocumentCache

    cache = DocumentCache(size=3)
    reads: list[list[int]] = []

    def read(rows: list[int]) -> list[dict[str, object]]:
        reads.append(rows)
        return [{"row": r, "name": f"doc{r}"} for r in rows if r != 99]  # 99: not stored

    first = cache.get_many("g1", [1, 2, 99], read)
    assert [d["row"] for d in first] == [1, 2]
    first[0]["score"] = 1.0  # callers add fields to what they get
    again = cache.get_many("g1", [2, 1], read)
    assert [d["row"] for d in again] == [2, 1] and "score" not in again[1]
    assert reads == [[1, 2, 99]]
    cache.get_many("g2", [1], read)  # another generation: its own documents
    cache.get_many("g1", [5, 6, 7], read)  # past the size: the oldest leave
    cache.get_many("g1", [1], read)
    assert reads[-1] == [1]
