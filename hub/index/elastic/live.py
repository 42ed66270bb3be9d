"""Live answers in the cluster: one `<prefix>-live-<source>` index per live source,
behind the read alias, merged by series exactly as the embedded live tier merges them.

- A live copy of a series a harvested index already holds is not a new hit: the
  harvested copy that counts gains the live source in `sources` (a partial update by
  `_id`); the live copy is stored with `primary: false`.
- The other live series are merged among the live sources like harvested ones: per
  field the value of the lowest priority number that has one, `sources` the union,
  `primary` only on the winner's copy.
- Every live document keeps its source's own record in `own` (stored, not indexed), so
  the merge can be redone when copies arrive or expire.
- A source's copies older than max(its ttl, 60 s) are deleted on the next answer, and
  the series they touched are merged again.
- A live source disabled or removed at runtime is dropped at once (`drop`), and the
  series it touched are merged again the same way.

Writes are refreshed before `add` returns: the query that follows sees them.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from typing import Any

import pyarrow as pa
from elasticsearch import AsyncElasticsearch

from adapters.batch import ARROW_SCHEMA
from hub.index.base import LiveAnswer
from hub.index.elastic.bulk import BulkWriter, Line
from hub.index.elastic.errors import create_index, guarded
from hub.index.elastic.layout import IndexInfo, Layout
from hub.index.elastic.mapping import PATIENT_KEY, ROW_KEY, create_body
from hub.index.elastic.settings import ElasticSettings
from hub.index.elastic.templates import ensure_templates
from schema.evaluate import tokenize
from schema.record import FIELDS, TEXT_FIELDS

MIN_RETENTION_S = 60.0
LOOKUP_CHUNK = 1_000
Key = tuple[str, str]  # (source, series_uid)
Copy = tuple[dict[str, Any], int]  # (own record, priority)
Held = tuple[str, list[str]]  # (harvested index, sources) of the copy that counts


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class LiveWriter:
    """Merges live answers into the cluster (one at a time: see `ElasticIndex.add_live_many`)."""

    def __init__(
        self, client: AsyncElasticsearch, settings: ElasticSettings, ttls: dict[str, float]
    ) -> None:
        self.client = client
        self.settings = settings
        self.layout = Layout(settings)
        self.ttls = ttls

    async def _call(self, make: Any) -> Any:
        return await guarded(self.settings, make)

    async def add(self, answers: list[LiveAnswer], serving: list[IndexInfo]) -> None:
        moment = now()
        harvested = [i.name for i in serving if i.kind == "harvest"]
        live = {i.source: i.name for i in serving if i.kind == "live"}
        fresh: dict[Key, Copy] = {}
        for answer in answers:
            self.ttls[answer.source] = answer.ttl_s
            if answer.source not in live:
                live[answer.source] = await self._create(answer.source)
            for own in _own_records(answer, moment):
                fresh[(answer.source, own["series_uid"])] = (own, answer.priority)
        expired = await self._expired(live, moment)
        affected = {uid for _, uid in fresh} | {uid for _, uid in expired}
        if not affected:
            return
        copies = await self._live_copies(list(live.values()), affected)
        for key in expired:
            copies.pop(key, None)
        copies.update(fresh)
        held = await self._harvested(harvested, affected)
        writes = _plan(affected, copies, held, set(live), live)
        for key in expired:
            if key not in copies:
                writes.setdefault(live[key[0]], []).append((_action("delete", key[1]), None))
        await self._write(writes)

    async def drop(self, sources: set[str], serving: list[IndexInfo]) -> None:
        """Forget live sources that were disabled or removed (hub/registry): their index
        leaves the read alias at once and is deleted, then the series they held are
        merged again from the copies that remain (a harvested copy loses them from
        `sources`; a live-only series another live source holds gets that one's record)."""
        live = {i.source: i.name for i in serving if i.kind == "live"}
        gone = {s: n for s, n in live.items() if s in sources}
        if not gone:
            return
        affected: set[str] = set()
        for index in gone.values():
            affected |= {h["_id"] for h in await self._scan(index, {"match_all": {}}, [])}
        actions = [{"remove": {"index": n, "alias": self.layout.read_alias}} for n in gone.values()]
        await self._call(lambda: self.client.indices.update_aliases(actions=actions))
        for name in gone.values():
            await self._call(lambda name=name: self.client.indices.delete(index=name))
        for source in gone:
            self.ttls.pop(source, None)
        remaining = {s: n for s, n in live.items() if s not in gone}
        copies = await self._live_copies(list(remaining.values()), affected)
        harvested = [i.name for i in serving if i.kind == "harvest"]
        held = await self._harvested(harvested, affected)
        await self._write(_plan(affected, copies, held, set(live), remaining))

    async def _write(self, writes: dict[str, list[Line]]) -> None:
        """Send the planned lines, index by index, and refresh what was written."""
        for index, lines in writes.items():
            writer = BulkWriter(self.client, self.settings, index)
            for start in range(0, len(lines), self.settings.bulk_chunk_docs):
                chunk = lines[start : start + self.settings.bulk_chunk_docs]
                await writer.send(chunk, ignore_missing=True)
        if writes:
            names = ",".join(writes)
            await self._call(lambda: self.client.indices.refresh(index=names))

    async def _create(self, source: str) -> str:
        name = self.layout.live_index(source)
        if not await self._call(lambda: self.client.indices.exists(index=name)):
            await ensure_templates(self.client, self.settings)  # the live mapping
            body = create_body(self.layout.meta("live", source), ingesting=False)
            aliases: dict[str, Any] = {self.layout.read_alias: {}}
            await create_index(self.settings, self.client, name, aliases=aliases, **body)
        return name

    async def _expired(self, live: dict[str, str], moment: dt.datetime) -> list[Key]:
        """Copies past their source's time to live (sources this process has heard from)."""
        found: list[Key] = []
        for source, index in live.items():
            if source not in self.ttls:
                continue
            cutoff = moment - dt.timedelta(seconds=max(self.ttls[source], MIN_RETENTION_S))
            query = {"range": {"fetched_at": {"lt": cutoff.strftime("%Y-%m-%dT%H:%M:%SZ")}}}
            hits = await self._scan(index, query, [])
            found += [(source, h["_id"]) for h in hits]
        return found

    async def _live_copies(self, indices: list[str], uids: set[str]) -> dict[Key, Copy]:
        """Every live copy of the series `uids`: its source's own record, and priority."""
        copies: dict[Key, Copy] = {}
        for index in indices:
            for chunk in _chunks(sorted(uids)):
                query = {"terms": {"series_uid": chunk}}
                for hit in await self._scan(index, query, ["own", "priority"]):
                    own = hit["_source"]["own"]
                    copies[(own["source"], own["series_uid"])] = (own, hit["_source"]["priority"])
        return copies

    async def _harvested(self, indices: list[str], uids: set[str]) -> dict[str, Held]:
        """The harvested copy that counts, of the series `uids`: (index, sources)."""
        held: dict[str, Held] = {}
        for index in indices:
            for chunk in _chunks(sorted(uids)):
                terms = {"terms": {"series_uid": chunk}}
                query = {"bool": {"filter": [terms, {"term": {"primary": True}}]}}
                for hit in await self._scan(index, query, ["sources"]):
                    held[hit["_id"]] = (index, list(hit["_source"].get("sources") or []))
        return held

    async def _scan(self, index: str, query: dict[str, Any], fields: list[str]) -> list[Any]:
        hits: list[Any] = []
        after: list[Any] | None = None
        while True:
            page = await self._call(
                lambda after=after: self.client.search(
                    index=index,
                    query=query,
                    sort=[{ROW_KEY: "asc"}],  # unique within one index
                    size=LOOKUP_CHUNK,
                    search_after=after,
                    source_includes=fields or ["series_uid"],
                    track_total_hits=False,
                )
            )
            batch = page["hits"]["hits"]
            hits += batch
            if len(batch) < LOOKUP_CHUNK:
                return hits
            after = batch[-1]["sort"]


def _plan(
    affected: set[str],
    copies: dict[Key, Copy],
    held: dict[str, Held],
    live_sources: set[str],
    live: dict[str, str],
) -> dict[str, list[Line]]:
    """Bulk lines, by index, that make the affected series what the merge says."""
    by_uid: dict[str, list[tuple[str, dict[str, Any], int]]] = {}
    for (source, uid), (own, priority) in copies.items():
        by_uid.setdefault(uid, []).append((source, own, priority))
    writes: dict[str, list[Line]] = {}
    for uid in sorted(affected):
        group = sorted(by_uid.get(uid, []), key=lambda c: (c[2], c[0]))
        holders = sorted(c[0] for c in group)
        if uid in held:
            index, sources = held[uid]
            kept = [s for s in sources if s not in live_sources]  # as the embedded tier lists
            wanted = kept + [s for s in holders if s not in kept]  # them: harvested ones first
            if wanted != sorted(sources):
                update = json.dumps({"doc": {"sources": wanted}})
                writes.setdefault(index, []).append((_action("update", uid), update))
            for source, own, priority in group:
                doc = document(own, own, wanted, False, True, priority)
                writes.setdefault(live[source], []).append((_action("index", uid), doc))
            continue
        if not group:  # every copy expired: the deletes remove it
            continue
        merged = _coalesce([own for _, own, _ in group])
        for i, (source, own, priority) in enumerate(group):
            doc = document(
                merged if i == 0 else own, own, holders, i == 0, len(group) > 1, priority
            )
            writes.setdefault(live[source], []).append((_action("index", uid), doc))
    return writes


def _coalesce(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Per field, the first non-null value (records are in priority order)."""
    merged = dict(records[0])
    for name in merged:
        if merged[name] is None:
            merged[name] = next((r[name] for r in records if r.get(name) is not None), None)
    return merged


def document(
    fields: dict[str, Any],
    own: dict[str, Any],
    sources: list[str],
    primary: bool,
    shared: bool,
    priority: int,
) -> str:
    """A live document, as `corpus.document_json` writes harvested ones (nulls left out)."""
    doc: dict[str, Any] = {}
    for name in FIELDS:
        value = fields.get(name)
        if value is not None:
            doc[name] = value
            if name in TEXT_FIELDS:
                doc[f"{name}_words"] = " ".join(tokenize(str(value)))
    doc.update(
        sources=sources,
        primary=primary,
        priority=priority,
        own=own,
        fetched_at=own["fetched_at"],
    )
    doc[PATIENT_KEY] = f"{fields['collection']}\x00{fields['patient_id']}"
    doc[ROW_KEY] = "\x00".join(
        fields[k] for k in ("collection", "patient_id", "study_uid", "series_uid")
    )
    for name in ("viewer_url", "download_url"):
        if fields.get(name) is not None:
            doc[name] = fields[name]
    if shared:
        doc["shared"] = True
    return json.dumps(doc, separators=(",", ":"))


def _own_records(answer: LiveAnswer, moment: dt.datetime) -> Iterable[dict[str, Any]]:
    """An answer's rows as JSON-able canonical records, tagged as the embedded tier does."""
    batches = [b for b in answer.batches if b.num_rows]
    table = pa.Table.from_batches(batches, schema=ARROW_SCHEMA) if batches else None
    if table is None:
        return
    stamp = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    for row in table.to_pylist():
        row.update(source=answer.source, sources=[answer.source], fetched_at=stamp)
        for name, value in row.items():
            if isinstance(value, dt.date):
                row[name] = value.isoformat()
        yield row


def _action(op: str, uid: str) -> str:
    return json.dumps({op: {"_id": uid}})


def _chunks(values: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(values), LOOKUP_CHUNK):
        yield values[start : start + LOOKUP_CHUNK]
