"""Publishing harvested snapshots: new index, bulk ingest, one atomic alias swap.

For each source whose snapshot is newer than what its alias serves: clean up indices
left by a harvest that died, create `<prefix>-<source>-<stamp>` (no refreshes),
bulk-load the documents, restore refreshes and refresh, then ONE `_aliases` call
moves `<prefix>-<source>` and `<prefix>-all` from the old index to the new one; only
then is the old index deleted. Until the swap, queries answer from the old index; if
anything fails before it, the new index is deleted and the error raised.

Sources not among the snapshots are unpublished (see `_detach`). Then the copies of
shared series are reconciled in every serving index (see the package docstring):
documents whose `doc_hash` differs from what the current snapshots say are rewritten
by `_id`. Last, the level indices (`levels.py`) are rebuilt and swapped in if they do
not answer for the current snapshots and priorities.

Mappings, shards and replicas come from the index templates (`templates.py`), written
first at every publish; an index creation adds only its `_meta` and, for a bulk load,
`refresh_interval: -1`, restored before the swap.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any

import pyarrow as pa
from elasticsearch import AsyncElasticsearch

from hub.index.elastic.bulk import BulkWriter, Line
from hub.index.elastic.corpus import Corpus
from hub.index.elastic.errors import IngestError, create_index, guarded
from hub.index.elastic.layout import Layout
from hub.index.elastic.levels import LevelPublisher
from hub.index.elastic.mapping import REFRESH_ON, ROW_KEY, create_body
from hub.index.elastic.settings import ElasticSettings
from hub.index.elastic.templates import ensure_templates
from hub.index.snapshots import Snapshot

log = logging.getLogger(__name__)
SCAN_PAGE = 10_000


class Publisher:
    def __init__(self, client: AsyncElasticsearch, settings: ElasticSettings) -> None:
        self.client = client
        self.settings = settings
        self.layout = Layout(settings)

    async def _call(self, make: Callable[[], Awaitable[Any]]) -> Any:
        return await guarded(self.settings, make)

    async def publish(
        self,
        snapshots: Sequence[Snapshot],
        priorities: dict[str, int],
        progress: Callable[[int], Any] | None = None,
    ) -> list[str]:
        """Bring the cluster in line with `snapshots`; the sources republished."""
        await self.ensure_read_alias()
        serving = {
            i.source: i for i in await self.layout.serving(self.client) if i.kind == "harvest"
        }
        stale = [
            s
            for s in snapshots
            if s.source not in serving
            or serving[s.source].meta.get("harvested_at") != s.harvested_at
        ]
        corpus = await asyncio.to_thread(Corpus, snapshots, priorities)
        levels = LevelPublisher(self.client, self.settings)
        try:
            await levels.detach_if_reweighted(corpus)
            for snap in stale:
                await self.publish_source(corpus, snap, progress)
            await self._detach({s.source for s in snapshots})
            await self.reconcile(corpus)
            await levels.publish(corpus)
        finally:
            corpus.close()
        return [s.source for s in stale]

    async def ensure_read_alias(self) -> None:
        """The index templates, and an empty index behind `<prefix>-all`, so the alias
        exists before any harvest."""
        await ensure_templates(self.client, self.settings)
        name = self.layout.empty_index
        if await self._call(lambda: self.client.indices.exists(index=name)):
            return
        body = create_body(self.layout.meta("empty"), ingesting=False)
        aliases: dict[str, Any] = {self.layout.read_alias: {}}
        await create_index(self.settings, self.client, name, aliases=aliases, **body)

    async def publish_source(
        self, corpus: Corpus, snap: Snapshot, progress: Callable[[int], Any] | None
    ) -> str:
        source = snap.source
        before = [i for i in await self.layout.indices(self.client) if i.source == source]
        await self._delete([i.name for i in before if i.kind == "harvest" and not i.aliases])
        old = [i.name for i in before if i.kind == "harvest" and i.aliases]
        name = self.layout.new_index(source)
        meta = self.layout.meta(
            "harvest",
            source,
            series=snap.series,
            harvested_at=snap.harvested_at,
            data_version=snap.data_version,
            published_at=dt.datetime.now(dt.UTC).isoformat(),
        )
        body = create_body(meta, ingesting=True)
        await create_index(self.settings, self.client, name, **body)
        try:
            reader = await asyncio.to_thread(
                corpus.documents, source, batch_rows=self.settings.bulk_chunk_docs
            )
            writer = BulkWriter(self.client, self.settings, name)
            written = await writer.load(reader, self.settings.bulk_max_inflight, progress)
            await self._call(
                partial(self.client.indices.put_settings, index=name, settings=REFRESH_ON)
            )
            await self._call(lambda: self.client.indices.refresh(index=name))
            await self._check_count(name, written)
            await self._swap(source, name, old)
        except BaseException:
            await asyncio.shield(self._delete([name]))
            raise
        await self._delete(old)
        log.info("published %s: %d series in %s", source, written, name)
        return name

    async def _check_count(self, name: str, written: int) -> None:
        answer = await self._call(lambda: self.client.count(index=name))
        if int(answer["count"]) > written:
            raise IngestError(f"{name} holds {answer['count']} documents, {written} were sent")

    async def _swap(self, source: str, new: str, old: list[str]) -> None:
        """One atomic `_aliases` call: the source alias and the read alias move together."""
        aliases = [self.layout.source_alias(source), self.layout.read_alias]
        actions: list[dict[str, Any]] = [
            {"remove": {"index": o, "alias": a}} for o in old for a in aliases
        ]
        actions += [{"add": {"index": new, "alias": a}} for a in aliases]
        await self._call(lambda: self.client.indices.update_aliases(actions=actions))

    async def _delete(self, names: list[str]) -> None:
        for name in names:
            await self._call(
                partial(self.client.indices.delete, index=name, ignore_unavailable=True)
            )

    async def _detach(self, configured: set[str]) -> None:
        """Sources no longer published (disabled or removed at runtime, or dropped from the
        config) stop answering: ONE `_aliases` call takes their indices out of the read
        alias and their source alias, then the indices are deleted. Their snapshot stays
        on disk; enabling the source again republishes from it."""
        gone = [
            i
            for i in await self.layout.indices(self.client)
            if i.kind == "harvest" and i.source not in configured and i.aliases
        ]
        if not gone:
            return
        actions = [
            {"remove": {"index": i.name, "alias": alias}}
            for i in gone
            for alias in sorted(i.aliases)
        ]
        await self._call(lambda: self.client.indices.update_aliases(actions=actions))
        await self._delete([i.name for i in gone])
        log.info("unpublished %s", ", ".join(sorted({i.source for i in gone})))

    # --- shared series ------------------------------------------------------------

    async def reconcile(self, corpus: Corpus) -> int:
        """Rewrite the copies of shared series whose content is not what it should be."""
        rewritten = 0
        for info in await self.layout.serving(self.client):
            if info.kind != "harvest" or info.source not in corpus.snapshots:
                continue
            actual = await self.scan_shared(info.name)
            if not actual and corpus.shared_count() == 0:
                continue
            lines = await asyncio.to_thread(_changed_lines, corpus, info.source, actual)
            writer = BulkWriter(self.client, self.settings, info.name)
            for start in range(0, len(lines), self.settings.bulk_chunk_docs):
                rewritten += await writer.send(lines[start : start + self.settings.bulk_chunk_docs])
            if lines:
                await self._call(partial(self.client.indices.refresh, index=info.name))
                log.info("reconciled %d shared series in %s", len(lines), info.name)
        return rewritten

    async def scan_shared(self, index: str) -> dict[str, str]:
        """`doc_hash` of every copy marked shared in `index`, by series."""
        found: dict[str, str] = {}
        after: list[Any] | None = None
        while True:
            page = await self._call(
                partial(
                    self.client.search,
                    index=index,
                    query={"term": {"shared": True}},
                    sort=[{ROW_KEY: "asc"}],
                    size=SCAN_PAGE,
                    source_includes=["doc_hash"],
                    search_after=after,
                    track_total_hits=False,
                )
            )
            hits = page["hits"]["hits"]
            for hit in hits:
                found[hit["_id"]] = hit["_source"].get("doc_hash", "")
            if len(hits) < SCAN_PAGE:
                return found
            after = hits[-1]["sort"]


def _changed_lines(corpus: Corpus, source: str, actual: dict[str, str]) -> list[Line]:
    """Documents of `source` for shared series, and for those that were shared, whose hash
    differs from the copy the index holds."""
    table = pa.table({"series_uid": pa.array(list(actual), pa.string())})
    corpus.con.register("was_shared", table)
    try:
        reader = corpus.documents(
            source,
            where="c.series_uid IN (SELECT series_uid FROM shared_ids)"
            " OR c.series_uid IN (SELECT series_uid FROM was_shared)",
        )
        lines: list[Line] = []
        for batch in reader:
            ids = batch.column("_id").to_pylist()
            hashes = batch.column("doc_hash").to_pylist()
            actions = batch.column("action").to_pylist()
            docs = batch.column("doc").to_pylist()
            for uid, digest, action, doc in zip(ids, hashes, actions, docs, strict=True):
                if actual.get(uid) != digest:
                    lines.append((action, doc))
        return lines
    finally:
        corpus.con.unregister("was_shared")
