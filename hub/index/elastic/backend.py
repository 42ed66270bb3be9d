"""`ElasticIndex`: the IndexBackend over an Elasticsearch/OpenSearch cluster.

Synchronous like the embedded index (the API calls it from worker threads); all
cluster I/O runs on one background loop (`LoopRunner`) with one async client.
What the read alias serves is looked up at most once a second (`Served`); its index
names identify the generation that cursors and cached value ranges are bound to.

Failures (docs/scale-out.md, "Failure behaviour"): every search goes through
`complete_search` (never an answer missing a shard) and every call a question makes is
bounded by the hub's query deadline (`bounded`), so a cluster that is down, red or
silent gives a clear `ElasticUnavailable` in time, never a hang.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Collection, Sequence
from functools import partial
from typing import Any

from elasticsearch import AsyncElasticsearch

from hub.config import ConfigError
from hub.index.base import CohortQuery, IndexNotReady, LiveAnswer, SourceSnapshotInfo
from hub.index.elastic.client import build_client, detect_server
from hub.index.elastic.cohort import DAY_MS, ElasticCohort
from hub.index.elastic.errors import ElasticUnavailable, guarded
from hub.index.elastic.health import bounded, complete_search, not_ready_reason
from hub.index.elastic.layout import IndexInfo, Layout, Served
from hub.index.elastic.live import LiveWriter
from hub.index.elastic.publish import Publisher
from hub.index.elastic.ranking import RankingCache
from hub.index.elastic.runner import LoopRunner
from hub.index.elastic.settings import CredentialsMissing, ElasticSettings
from hub.index.elastic.templates import delete_templates
from hub.index.protocol import IndexStats, Progress
from hub.index.snapshots import Snapshot
from schema.record import FIELDS, FieldKind

log = logging.getLogger(__name__)
SERVED_TTL_S = 1.0


class ElasticIndex:
    """The scale-out index backend (`index = "elasticsearch"`)."""

    def __init__(self, settings: ElasticSettings, query_deadline_s: float = 10.0) -> None:
        try:  # a missing secret is a configuration error, reported before any request
            settings.basic_auth()
            settings.api_key()
        except CredentialsMissing as exc:
            raise ConfigError(str(exc)) from None
        self.settings = settings
        self.deadline_s = query_deadline_s
        self.layout = Layout(settings)
        self.runner = LoopRunner()
        self._client: AsyncElasticsearch | None = None
        self._client_lock = asyncio.Lock()
        self._lock = threading.Lock()
        self._served: Served | None = None
        self._served_at = 0.0
        self._ranges: dict[tuple[str, str], tuple[int, int]] = {}
        self.rankings = RankingCache()
        self._live_lock = asyncio.Lock()
        self._ttls: dict[str, float] = {}

    # --- the client, on the runner's loop ----------------------------------------------

    async def client(self) -> AsyncElasticsearch:
        async with self._client_lock:
            if self._client is None:
                server = await detect_server(self.settings)
                self._client = build_client(self.settings, server)
            return self._client

    async def search(self, **body: Any) -> dict[str, Any]:
        """A search over the read alias; the answer's body, complete (every shard
        answered) and within the query deadline, or `ElasticUnavailable`."""
        return await self.search_in(self.layout.read_alias, **body)

    async def search_in(self, index: str, **body: Any) -> dict[str, Any]:
        """A search over `index` (the read alias or a level index), as `search`."""
        client = await self.client()
        indices = self._served.indices if self._served is not None else ()
        deadline = self.deadline_s
        call = complete_search(client, self.settings, index, indices, body, deadline)
        try:
            return await bounded(call, deadline, self.settings)
        except ElasticUnavailable as exc:
            raise self._naming_sources(exc) from exc.__cause__

    def _naming_sources(self, exc: ElasticUnavailable) -> ElasticUnavailable:
        """`exc`, naming every source last served when it names none: on an unreachable
        cluster, no source's answer can be read."""
        if not exc.sources and self._served is not None:
            exc.sources = tuple(sorted({i.source for i in self._served.indices if i.source}))
        return exc

    # --- what is served ----------------------------------------------------------------

    def served(self) -> Served:
        now = time.monotonic()
        with self._lock:
            if self._served is not None and now - self._served_at < SERVED_TTL_S:
                return self._served
        try:
            everything = self.runner.run(self._indices())
        except ElasticUnavailable as exc:
            raise self._naming_sources(exc) from exc.__cause__
        indices = [i for i in everything if self.layout.read_alias in i.aliases]
        if not indices:
            raise IndexNotReady(
                f"nothing is published under {self.layout.read_alias} on {self.settings.url} "
                "yet; run `imaging-hub harvest`"
            )
        levels = tuple(self.layout.served_levels(everything))
        served = Served(",".join(i.name for i in indices), tuple(indices), levels)
        with self._lock:
            self._served, self._served_at = served, now
        return served

    async def _indices(self) -> list[IndexInfo]:
        async def look() -> list[IndexInfo]:
            return await self.layout.indices(await self.client())

        return await bounded(look(), self.deadline_s, self.settings)

    def ready(self) -> bool:
        return self.not_ready_reason() is None

    def not_ready_reason(self) -> str | None:
        """Why questions cannot be answered now (None: they can): nothing published, the
        cluster unreachable, or an index behind the read alias red (a primary shard
        without a copy). Asked afresh each time, so `/readyz` turns ready on recovery."""
        try:
            served = self.served()
        except IndexNotReady as exc:
            return str(exc)

        async def health() -> str | None:
            client = await self.client()
            return await not_ready_reason(client, self.settings, served.indices)

        try:
            return self.runner.run(bounded(health(), self.deadline_s, self.settings))
        except ElasticUnavailable as exc:
            return str(exc)

    def cohort(self, query: CohortQuery) -> ElasticCohort:
        return ElasticCohort(self, self.served(), query)

    def snapshots(self) -> list[SourceSnapshotInfo]:
        try:
            served = self.served()
        except IndexNotReady:
            return []
        return [
            SourceSnapshotInfo(
                i.source,
                int(i.meta.get("series", 0)),
                i.meta.get("harvested_at"),
                i.meta.get("data_version"),
                {"index": i.name},
            )
            for i in served.indices
            if i.kind == "harvest"
        ]

    def stats(self) -> IndexStats:
        """What the read alias serves: its indices, their harvested series (as published)
        and the primaries' store size (one `_stats` call)."""
        served = self.served()
        series = sum(int(i.meta.get("series", 0)) for i in served.indices if i.kind == "harvest")

        async def store_bytes() -> int | None:
            client = await self.client()
            call = partial(client.indices.stats, index=self.layout.read_alias, metric="store")
            answer = await guarded(self.settings, call)
            size = answer.body.get("_all", {}).get("primaries", {}).get("store", {})
            return int(size["size_in_bytes"]) if "size_in_bytes" in size else None

        return IndexStats(served.key, series, self.runner.run(store_bytes()))

    def value_range(self, served: Served, field: str) -> tuple[int, int]:
        """Smallest and largest value of a numeric field over the whole index (dates in
        days since 1970-01-01, as the embedded index keeps them)."""
        key = (served.key, field)
        if key not in self._ranges:
            aggs = {"lo": {"min": {"field": field}}, "hi": {"max": {"field": field}}}
            query = {"term": {"primary": True}}
            answer = self.runner.run(self.search(query=query, size=0, aggs=aggs))
            lo, hi = answer["aggregations"]["lo"]["value"], answer["aggregations"]["hi"]["value"]
            if lo is None or hi is None:
                self._ranges[key] = (0, 0)
            elif FIELDS[field].kind is FieldKind.DATE:
                self._ranges[key] = (int(lo // DAY_MS), int(hi // DAY_MS))
            else:
                self._ranges[key] = (int(lo), int(hi))
        return self._ranges[key]

    # --- writing ---------------------------------------------------------------------

    async def publish(
        self,
        snapshots: Sequence[Snapshot],
        priorities: dict[str, int],
        progress: Progress | None = None,
    ) -> list[str]:
        """Publish harvested snapshots (see `publish.py`); the sources republished."""

        async def run() -> list[str]:
            publisher = Publisher(await self.client(), self.settings)
            return await publisher.publish(snapshots, priorities, progress)

        done = await self.runner.run_async(run())
        with self._lock:
            self._served = None
        return done

    def drop(self) -> None:
        """Delete every index and index template of this prefix (tests, benchmarks,
        decommissioning)."""

        async def drop_all() -> None:
            client = await self.client()
            for info in await self.layout.indices(client):
                call = partial(client.indices.delete, index=info.name, ignore_unavailable=True)
                await guarded(self.settings, call)
            await delete_templates(client, self.settings)

        self.runner.run(drop_all())
        with self._lock:
            self._served = None

    def prepare(self, query: CohortQuery) -> None:
        """Nothing to start early: the cluster evaluates the whole question at once."""

    def add_live_many(self, answers: list[LiveAnswer]) -> None:
        """Merge live answers into the cluster (see `live.py`); one merge at a time, so two
        queries answering at once cannot interleave their read-modify-writes."""

        async def run() -> None:
            client = await self.client()
            async with self._live_lock:
                serving = await self.layout.serving(client)
                await LiveWriter(client, self.settings, self._ttls).add(answers, serving)

        self.runner.run(run())
        with self._lock:
            self._served = None

    def reopen(self, drop_live: Collection[str] = ()) -> None:
        """After a runtime source change (hub/registry/admin.py), as the embedded index
        does: forget the live answers of `drop_live` now (see `LiveWriter.drop`), and
        look up what the read alias serves again on the next question."""
        if drop_live:

            async def run() -> None:
                client = await self.client()
                async with self._live_lock:
                    serving = await self.layout.serving(client)
                    writer = LiveWriter(client, self.settings, self._ttls)
                    await writer.drop(set(drop_live), serving)

            self.runner.run(run())
        with self._lock:
            self._served = None

    def warm_live(self) -> None:
        """Nothing to prepare: live merging happens in the cluster."""

    def close(self) -> None:
        """Close the client (its connection pool) on its loop, then stop the loop."""
        client, self._client = self._client, None
        try:
            if client is not None:
                self.runner.run(client.close())
        finally:
            self.runner.close()
