"""Freed heap memory goes back to the system while the worker runs."""

from __future__ import annotations

import threading
import time

import pytest

from hub.observability import trim


def _resident_anonymous_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    raise AssertionError("no RssAnon in /proc/self/status")


def test_the_trimming_thread_returns_freed_heap_and_stops() -> None:
    if trim._malloc_trim() is None:
        pytest.fail("this Linux has no glibc malloc_trim; the hub's Debian image does")
    # Many small blocks on the heap (below the mmap threshold), then all but the last
    # freed: glibc keeps the pages, as the last block pins the top of the heap.
    blocks = [bytearray(64 * 1024) for _ in range(3_000)]
    for i in range(len(blocks)):
        blocks[i][::4096] = b"x" * len(blocks[i][::4096])
    keep = blocks[-1]
    del blocks
    held = _resident_anonymous_kib()
    stop = trim.start_trimming(interval_s=0.05)
    try:
        deadline = time.monotonic() + 5
        while _resident_anonymous_kib() > held - 100_000 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _resident_anonymous_kib() <= held - 100_000  # of ~190 MB freed
        assert any(t.name == "malloc-trim" for t in threading.enumerate())
    finally:
        stop()
    time.sleep(0.2)
    assert not any(t.name == "malloc-trim" for t in threading.enumerate())
    assert len(keep) == 64 * 1024


def test_startup_objects_are_frozen_out_of_full_collections() -> None:
    import gc

    before = gc.get_freeze_count()
    kept = [[i] for i in range(10_000)]  # alive past the freeze, as the loaded hub is
    trim.freeze_startup_objects()
    try:
        assert gc.get_freeze_count() >= before + len(kept)
    finally:
        gc.unfreeze()
