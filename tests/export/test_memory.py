"""An export's memory does not grow with its cohort: streaming the whole test corpus
(~27k series) allocates at its peak about what a ~1.3k-series cohort does, while
holding the cohort's records (what a non-streaming export would) costs many times that.

Python allocations are measured with tracemalloc (exact and deterministic, unlike RSS
on a shared machine); Arrow's buffers are not Python objects, and are bounded by
`READ_ROWS` (see `bench/exports.py` for resident memory on the full IDC corpus)."""

from __future__ import annotations

import asyncio
import gc
import tracemalloc
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hub.export import Export, prepare_export
from hub.export.records import CHUNK_ROWS
from hub.service import Hub
from tests.conftest import hub_config

SMALL = {"=": {"collection": "bonemarrowwsi_pediatricleukemia"}}
MB = 1 << 20


@pytest.fixture(scope="module")
def hub(data_dir: Path) -> Iterator[Hub]:
    hub = Hub(hub_config(data_dir))
    yield hub
    asyncio.run(hub.aclose())


def peak_bytes(run: Callable[[], Any]) -> int:
    """The most Python memory `run` had allocated at once, beyond what it started with."""
    gc.collect()
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        run()
        return tracemalloc.get_traced_memory()[1] - start
    finally:
        tracemalloc.stop()


def drain(export: Export) -> None:
    deque(export.text(), maxlen=0)


@pytest.mark.parametrize("fmt", ["ndjson", "csv", "s5cmd"])
def test_export_memory_does_not_grow_with_the_cohort(hub: Hub, fmt: str) -> None:
    small, whole = prepare_export(hub, fmt, SMALL), prepare_export(hub, fmt, {})
    assert small.total > CHUNK_ROWS and whole.total >= 15 * small.total
    small_peak = peak_bytes(lambda: drain(small))
    whole_peak = peak_bytes(lambda: drain(whole))
    assert whole.tally.written == whole.total and small.tally.written == small.total
    assert whole_peak < 1.25 * small_peak + MB, (small_peak, whole_peak)


def test_the_measure_sees_memory_that_grows(hub: Hub) -> None:
    """A reader that kept what it made would fail the test above: holding the whole
    cohort's records costs many times streaming it."""
    whole = prepare_export(hub, "ndjson", {})
    streamed = peak_bytes(lambda: drain(whole))
    assert peak_bytes(lambda: list(whole.chunks())) > 10 * streamed
