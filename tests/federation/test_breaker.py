"""The circuit breaker's half-open probe, and waiting for a source slot within the deadline.

A source that hangs must not collect a queue: when its breaker half-opens one question
tries it and the others still skip it, and a question waiting for one of the source's
connection slots gives up at its deadline like one waiting for an answer.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from adapters.dicomweb import DicomwebAdapter
from adapters.spi import SourceSettings
from hub.federation.fetch import CircuitBreaker, SourceFetcher
from schema.filters import MATCH_ALL
from tests.federation.fault_server import FaultServer


def test_half_open_lets_one_probe_through_until_it_answers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    breaker = CircuitBreaker(threshold=2, cooldown_s=30.0)
    breaker.record(False)
    breaker.record(False)
    assert breaker.state == "open" and not breaker.allows()
    now[0] += 31
    assert breaker.state == "half-open"
    assert breaker.allows()  # the probe
    assert not breaker.allows() and not breaker.allows()  # everyone else still skips
    breaker.record(False)  # the probe failed: open again for a whole cooldown
    assert breaker.state == "open" and not breaker.allows()
    now[0] += 31
    assert breaker.allows()
    now[0] += 31  # that probe never answered (its question was cancelled)
    assert breaker.allows(), "a lost probe must give way after a cooldown"
    breaker.record(True)
    assert breaker.state == "closed" and breaker.allows() and breaker.allows()


def _fetcher(server: FaultServer) -> SourceFetcher:
    settings = SourceSettings(
        name="slow", adapter="dicomweb", mode="live", url=server.url, timeout_s=30, cache_ttl_s=0
    )
    return SourceFetcher(DicomwebAdapter(settings))


def test_waiting_for_a_slot_counts_against_the_deadline() -> None:
    """Four questions hold the hanging source's four slots; a fifth must come back at its
    own deadline, not after the first four give up."""

    async def scenario(server: FaultServer) -> list[Any]:
        fetcher = _fetcher(server)
        translation = fetcher.adapter.translate(MATCH_ALL)
        holders = [asyncio.create_task(fetcher.fetch(translation, 3.0)) for _ in range(4)]
        await asyncio.sleep(0.2)
        started = time.perf_counter()
        late = await fetcher.fetch(translation, 0.5)
        waited = time.perf_counter() - started
        for task in holders:
            task.cancel()
        await asyncio.gather(*holders, return_exceptions=True)
        return [late, waited]

    with FaultServer("slow", 5, mode="hang") as server:
        late, waited = asyncio.run(scenario(server))
    assert late.status == "timeout"
    assert waited < 1.5
