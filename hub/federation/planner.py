"""The query planner for live sources: which to ask, what to send, what to keep.

For each live source that `route` (hub/federation/route.py) says to ask: translate the
cohort filter, and unless an answer to the same native request is still fresh (its
`cache_ttl_s`), fetch it (concurrently with the
other sources, each under its own deadline and all under the query's deadline),
apply the residual the source could not evaluate, and merge what is left into the
index. The one query over the index then ranks, facets and pages everything.
Harvested sources need nothing here: the index already holds them. A source the filter
excludes, or whose circuit is open, is not asked and not counted by its breaker.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import pyarrow as pa

from adapters.spi import Adapter, Translation
from hub.federation.fetch import FetchResult, SourceFetcher
from hub.federation.route import Route, RouteKind, is_live, route
from hub.federation.status import SourceState
from hub.index.base import CohortQuery, LiveAnswer
from hub.index.protocol import LiveIndex
from hub.observability import metrics
from schema.evaluate import matches
from schema.filters import And, Node, Search
from schema.record import TEXT_FIELDS

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class SourceStatus:
    source: str
    status: SourceState
    message: str
    latency_ms: float


def with_text(query: CohortQuery) -> Node:
    """The filter plus the free text as a `search` node, as a source must see it."""
    if not query.text:
        return query.filter
    return And((query.filter, Search(query.text, TEXT_FIELDS)))


class Planner:
    """Fetches live sources for cohort questions and merges their answers into the index."""

    def __init__(
        self, adapters: dict[str, Adapter], index: LiveIndex, deadline_s: float = 10.0
    ) -> None:
        self.index = index
        self.deadline_s = deadline_s
        self.live = _live(adapters)
        self.fetchers = {n: SourceFetcher(a) for n, a in self.live.items()}
        self._fresh_until: dict[tuple[str, str], float] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self._own_loop: asyncio.AbstractEventLoop | None = None
        self._swap = threading.Lock()  # `live` and `fetchers` change together

    def set_sources(self, adapters: dict[str, Adapter]) -> None:
        """Replace the live sources (runtime registration, see `hub.registry.admin`).

        New dicts are swapped in whole, so a query in flight keeps iterating the old ones;
        fetchers (and their circuit state) of unchanged adapters are kept. Cached answers of
        sources that left are forgotten."""
        live = _live(adapters)
        with self._swap:
            self.fetchers = {
                n: f if (f := self.fetchers.get(n)) is not None and self.live.get(n) is a
                else SourceFetcher(a)
                for n, a in live.items()
            }  # fmt: skip
            self.live = live
            self._fresh_until = {k: v for k, v in self._fresh_until.items() if k[0] in live}

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the loop the adapters' HTTP clients belong to: the server's
        loop when there is one (we are in a worker thread), else a loop of our own in a
        background thread, kept for the hub's life so clients and connections are reused.
        Never from the loop's own thread: waiting there for the loop would never end."""
        loop = self._loop()
        if _running_loop() is loop:
            coro.close()
            raise RuntimeError("live sources asked from the event loop's own thread")
        return asyncio.run_coroutine_threadsafe(coro, loop).result()

    async def run_async(self, coro: Coroutine[Any, Any, T]) -> T:
        """`run` from inside some other event loop (e.g. `asyncio.run(hub.aclose())`)."""
        loop = self._loop()
        if loop is asyncio.get_running_loop():
            return await coro
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, loop))

    def _loop(self) -> asyncio.AbstractEventLoop:
        if self.loop is not None and self.loop.is_running():
            return self.loop
        if self._own_loop is None:
            self._own_loop = asyncio.new_event_loop()
            threading.Thread(target=self._own_loop.run_forever, daemon=True, name="live").start()
        return self._own_loop

    def close(self) -> None:
        if self._own_loop is not None:
            self._own_loop.call_soon_threadsafe(self._own_loop.stop)
            self._own_loop = None

    def route_of(self, adapter: Adapter, node: Node) -> tuple[Route, Translation | None]:
        """The route of live source `adapter` for `node` (hub/federation/route.py), with the
        translation it would be asked with (None when it would not be asked)."""
        with self._swap:
            fetcher = self.fetchers.get(adapter.name)
        way, translation = self._route(adapter.name, adapter, fetcher, node, asking=False)
        return way, None if isinstance(translation, FetchResult) else translation

    def _route(
        self,
        name: str,
        adapter: Adapter,
        fetcher: SourceFetcher | None,
        node: Node,
        asking: bool = True,
    ) -> tuple[Route, Translation | FetchResult | None]:
        """The route and the translation; only when the source is to be asked (`asking`: a
        question, not a listing) does a failed translate count for the breaker and metrics."""
        settings, capabilities = adapter.settings, adapter.capabilities
        circuit = fetcher.breaker.state if fetcher is not None else "closed"
        way = route(settings, capabilities, node, circuit=circuit)
        if way.kind is RouteKind.EXCLUDED:  # not even translated: nothing of it is wanted
            return way, None
        if asking and way.kind is RouteKind.CIRCUIT_OPEN:  # nor is a failing source's
            return way, None
        if fetcher is None:
            return way, adapter.translate(node)
        translation = fetcher.translate(node, counted=asking)
        if isinstance(translation, FetchResult):  # its translate failed
            return way, translation
        if self._fresh_until.get(_cache_key(name, translation), 0.0) > time.monotonic():
            way = route(settings, capabilities, node, circuit=circuit, fresh=True)
        return way, translation

    async def refresh(self, query: CohortQuery) -> dict[str, SourceStatus]:
        """Bring every live source's answer to `query` into the index; status per source.
        Only sources routed `live` are asked (hub/federation/route.py)."""
        with self._swap:  # one consistent view, whatever `set_sources` does meanwhile
            live, fetchers = self.live, self.fetchers
        if not live:
            return {}
        node = with_text(query)
        statuses: dict[str, SourceStatus] = {}
        tasks: dict[str, asyncio.Task[FetchResult]] = {}
        translations: dict[str, Translation] = {}
        for name, adapter in live.items():
            way, translation = self._route(name, adapter, fetchers[name], node)
            if isinstance(translation, FetchResult):  # contained: see SourceFetcher.translate
                statuses[name] = SourceStatus(name, translation.status, translation.message, 0.0)
                continue
            if way.kind is RouteKind.CACHED:
                statuses[name] = SourceStatus(name, SourceState.OK, way.message, 0.0)
                metrics.SOURCE_FETCHES.labels(name, "cached").inc()
                continue
            if not way.asks or translation is None:
                state = way.state or SourceState.SKIPPED
                statuses[name] = SourceStatus(name, state, way.message, 0.0)
                if way.kind is RouteKind.CIRCUIT_OPEN:
                    metrics.observe_fetch(name, SourceState.SKIPPED, 0.0, 0, 0)
                continue
            translations[name] = translation
            deadline = min(adapter.settings.timeout_s, self.deadline_s)
            tasks[name] = asyncio.create_task(fetchers[name].fetch(translation, deadline))
        if tasks:  # meanwhile, the index starts on its own part of the question
            prepared = asyncio.create_task(asyncio.to_thread(self.index.prepare, query))
            _, pending = await asyncio.wait(tasks.values(), timeout=self.deadline_s + 0.05)
            for task in pending:
                task.cancel()
            await asyncio.wait([prepared])
            if prepared.exception() is not None:  # only a head start: the cohort will say
                log.debug("preparing %s failed: %s", query, prepared.exception())
        answers: list[LiveAnswer] = []
        for name, task in tasks.items():
            if not task.done() or task.cancelled():  # the fetch itself never got to count it
                metrics.observe_fetch(name, "timeout", self.deadline_s, 0, 0)
                statuses[name] = SourceStatus(
                    name,
                    SourceState.TIMEOUT,
                    f"{name} did not answer within the query deadline of {self.deadline_s:g} s",
                    self.deadline_s * 1000,
                )
                continue
            result = task.result()
            kept = self._apply_residual(result.batches, translations[name])
            if result.status.answered:
                settings = live[name].settings
                answers.append(LiveAnswer(name, kept, settings.cache_ttl_s, settings.priority))
            if result.status is SourceState.OK:
                key = _cache_key(name, translations[name])
                self._fresh_until[key] = time.monotonic() + live[name].settings.cache_ttl_s
            statuses[name] = SourceStatus(
                name,
                result.status,
                result.message,
                result.latency_ms,
            )
        if answers:  # one merge (one tantivy commit) for every source that answered
            await asyncio.to_thread(self.index.add_live_many, answers)
        return statuses

    @staticmethod
    def _apply_residual(
        batches: list[pa.RecordBatch], translation: Translation
    ) -> list[pa.RecordBatch]:
        residual = translation.residual
        if residual is None:
            return batches
        kept = []
        for batch in batches:
            keep = [matches(residual, row) for row in batch.to_pylist()]
            kept.append(batch.filter(pa.array(keep, type=pa.bool_())))
        return kept


def _live(adapters: dict[str, Adapter]) -> dict[str, Adapter]:
    """The sources asked per question; the rest are answered from the index."""
    return {n: a for n, a in adapters.items() if is_live(a.settings, a.capabilities)}


def _cache_key(source: str, translation: Translation) -> tuple[str, str]:
    """Answers are reused per source and native request (its JSON, keys sorted)."""
    return source, json.dumps(translation.native, sort_keys=True, default=str)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
