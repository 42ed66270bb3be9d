"""Level indices: one document per study and per patient, its series nested, for exact
distinct counts that cost one hit total (what Guppy and BIH do).

A study document holds every series of the study as a `nested` document (`series`
path) with the fields a filter reads, mapped exactly as in the series indices
(`mapping.filterable_properties`, text twins and `sources` included); a patient
document likewise, grouped by (collection, patient_id). A series-level filter then
counts studies (patients) as the hits total of `{"nested": {"path": "series", "query":
<the series filter, fields under series.>}}`: all conditions hold on ONE series, the
series-level semantics of the embedded backend.

De-duplication stays exact: the documents are grouped from the PRIMARY copy of each
series (`Corpus.primary_copies`, the merged record of the winning source), so a study
or patient is one document whatever sources hold its series. They are built for the
whole corpus from the same DuckDB corpus that computes winners, and published after
every series change and reconcile: new indices `<prefix>-level-<level>-<stamp>` (no
refreshes during the load), then ONE `_aliases` call moves both level aliases; the
old ones are deleted after. A publish killed before that swap leaves the old ones
serving; the next publish deletes the half-built ones it finds (no alias) and builds
again, as it does for series indices.

Each level index records what it was built from in its `_meta`: `built_from` (source
→ `harvested_at` of the snapshot) and `priorities`. Counts use the level indices only
while `built_from` matches what the read alias serves (see `counting.py`), so between
a series swap and the level swap counts fall back to the composite method and stay
exact. A change of priorities alone (no new snapshot) is not visible in what is
served, so the level aliases are detached before such a publish reconciles copies.

The level documents keep no `_source` (they are only ever counted): the series
already sit in the series indices, and this keeps the level indices small.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from functools import partial
from typing import Any

import pyarrow as pa
from elasticsearch import AsyncElasticsearch

from hub.index.elastic.bulk import BulkWriter
from hub.index.elastic.corpus import Corpus, filterable_pairs, without_nulls
from hub.index.elastic.errors import IngestError, create_index, guarded
from hub.index.elastic.layout import LEVELS, IndexInfo, Layout
from hub.index.elastic.mapping import (
    NESTED_PATH,
    REFRESH_ON,
    create_body,
    filterable_properties,
)
from hub.index.elastic.settings import ElasticSettings

log = logging.getLogger(__name__)
GROUP_KEYS = {"studies": "study_uid", "patients": "collection || chr(0) || patient_id"}
"""What makes one document of each level (DESIGN.md: distinct study_uid; distinct
(collection, patient_id), the `patient_key` of the series documents)."""
MIN_NESTED_LIMIT = 10_000  # the servers' default `index.mapping.nested_objects.limit`


def level_mappings() -> dict[str, Any]:
    """Strict, no `_source`; `key` is the study uid or the patient key."""
    return {
        "dynamic": "strict",
        "_source": {"enabled": False},
        "properties": {
            "key": {"type": "keyword"},
            NESTED_PATH: {"type": "nested", "properties": filterable_properties()},
        },
    }


@dataclass(frozen=True)
class LevelDocuments:
    reader: pa.RecordBatchReader
    documents: int
    largest: int
    """Series in the largest document (the index's nested-objects limit must allow it)."""


def level_documents(corpus: Corpus, level: str, series_per_chunk: int) -> LevelDocuments:
    """Bulk lines (`action`, `doc`) of one level, in chunks of about `series_per_chunk`
    nested series (a patient can hold thousands of series: chunks by documents alone
    could exceed the server's request size)."""
    key = GROUP_KEYS[level]
    con = corpus.con
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE level_groups AS
        SELECT {key} AS key, json_group_array({without_nulls(filterable_pairs())}) AS series,
               count(*) AS n
        FROM ({corpus.primary_copies()}) GROUP BY key"""
    )
    rows = con.execute(
        "SELECT count(*), coalesce(sum(n), 0), coalesce(max(n), 0) FROM level_groups"
    )
    documents, series, largest = (int(v) for v in rows.fetchall()[0])
    per_chunk = max(1, series_per_chunk * documents // max(series, 1))
    reader = con.sql(
        """SELECT json_object('index', json_object('_id', md5(key)))::VARCHAR AS action,
                  json_object('key', key, 'series', series)::VARCHAR AS doc
           FROM level_groups"""
    ).to_arrow_reader(per_chunk)
    return LevelDocuments(reader, documents, largest)


def wanted_meta(corpus: Corpus) -> dict[str, Any]:
    """What level indices built from `corpus` record about it."""
    return {
        "built_from": {name: snap.harvested_at for name, snap in sorted(corpus.snapshots.items())},
        "priorities": dict(sorted(corpus.priorities.items())),
    }


def built_from_served(indices: tuple[IndexInfo, ...]) -> dict[str, Any]:
    """The `built_from` that level indices must record to answer for what is served."""
    return {i.source: i.meta.get("harvested_at") for i in indices if i.kind == "harvest"}


class LevelPublisher:
    """Builds the level indices from a corpus and swaps them in."""

    def __init__(self, client: AsyncElasticsearch, settings: ElasticSettings) -> None:
        self.client = client
        self.settings = settings
        self.layout = Layout(settings)

    async def _call(self, make: Any) -> Any:
        return await guarded(self.settings, make)

    async def _levels(self) -> list[IndexInfo]:
        return [i for i in await self.layout.indices(self.client) if i.kind == "level"]

    async def detach_if_reweighted(self, corpus: Corpus) -> None:
        """Priorities changed without a new snapshot: take the level aliases away (counts
        use the composite method) before copies are reconciled under the new winners."""
        wanted = wanted_meta(corpus)["priorities"]
        stale = [
            i for i in await self._levels() if i.aliases and i.meta.get("priorities") != wanted
        ]
        if stale:
            actions = [
                {"remove": {"index": i.name, "alias": a}} for i in stale for a in sorted(i.aliases)
            ]
            await self._call(lambda: self.client.indices.update_aliases(actions=actions))

    async def publish(self, corpus: Corpus) -> bool:
        """Rebuild and swap in the level indices unless they already answer for `corpus`;
        whether they were rebuilt."""
        levels = await self._levels()
        await self._delete([i.name for i in levels if not i.aliases])  # left by a killed run
        old = [i for i in levels if i.aliases]
        wanted = wanted_meta(corpus)
        current = {str(i.meta.get("level")) for i in old if _same(i.meta, wanted)}
        if current == set(LEVELS) and len(old) == len(LEVELS):
            return False
        built: dict[str, str] = {}
        try:
            for level in LEVELS:
                built[level] = await self._build(corpus, level, wanted)
            actions: list[dict[str, Any]] = [
                {"remove": {"index": i.name, "alias": a}} for i in old for a in sorted(i.aliases)
            ]
            actions += [
                {"add": {"index": name, "alias": self.layout.level_alias(level)}}
                for level, name in built.items()
            ]
            await self._call(lambda: self.client.indices.update_aliases(actions=actions))
        except BaseException:
            await asyncio.shield(self._delete(list(built.values())))
            raise
        await self._delete([i.name for i in old])
        return True

    async def _build(self, corpus: Corpus, level: str, wanted: dict[str, Any]) -> str:
        docs = await asyncio.to_thread(
            level_documents, corpus, level, self.settings.bulk_chunk_docs
        )
        name = self.layout.new_level_index(level)
        body = create_body(self.layout.meta("level", level=level, **wanted), ingesting=True)
        body["settings"]["index.mapping.nested_objects.limit"] = max(MIN_NESTED_LIMIT, docs.largest)
        await create_index(self.settings, self.client, name, **body)
        try:
            writer = BulkWriter(self.client, self.settings, name)
            written = await writer.load(docs.reader, self.settings.bulk_max_inflight)
            await self._call(
                partial(self.client.indices.put_settings, index=name, settings=REFRESH_ON)
            )
            await self._call(partial(self.client.indices.refresh, index=name))
            count = await self._call(partial(self.client.count, index=name))
            if written != docs.documents or int(count["count"]) != written:
                raise IngestError(
                    f"{name} holds {count['count']} documents; {docs.documents} were built, "
                    f"{written} sent"
                )
        except BaseException:
            await asyncio.shield(self._delete([name]))
            raise
        log.info("published %s: %d %s", name, written, level)
        return name

    async def _delete(self, names: list[str]) -> None:
        for name in names:
            await self._call(
                partial(self.client.indices.delete, index=name, ignore_unavailable=True)
            )


def _same(meta: dict[str, Any], wanted: dict[str, Any]) -> bool:
    return all(meta.get(k) == v for k, v in wanted.items())
