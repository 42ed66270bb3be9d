"""One cohort question over the read alias: counts, facets, histogram, series, by source.

Counts are exact, as DESIGN.md defines them (`counting.py`: hits totals of the series
and of the level indices, or a composite aggregation when live answers or a publish
under way make the level indices miss something). Facets are terms aggregations with an
explicit size (and a `shard_size` that covers every value of a facetable field on
each shard) plus a `missing` aggregation. Series pages use `search_after` on a sort
that always ends with the unique `row_key`: one search a page, no 10,000-row window.
"""

from __future__ import annotations

import asyncio
import logging
from functools import cached_property
from typing import Any, Protocol

from hub.index import base, cursor
from hub.index.base import Bucket, CohortQuery, Counts, Facet, SeriesPage, SortKey
from hub.index.common import bucket_key, question_nodes
from hub.index.elastic.counting import Counting, Searcher
from hub.index.elastic.dsl import ROW_ORDER, cohort_query, sort_clauses
from hub.index.elastic.layout import Served
from hub.index.elastic.mapping import SOURCE_INCLUDES, STORED_ONLY, es_field
from hub.index.elastic.ranking import RankingCache, rank
from hub.index.elastic.runner import LoopRunner
from hub.index.protocol import CohortView
from schema.filters import Node, Search
from schema.record import FIELDS, FieldKind

log = logging.getLogger(__name__)
FACET_SHARD_SIZE = 10_000
MAX_SOURCES = 1_000
DAY_MS = 86_400_000


class Cluster(Searcher, Protocol):
    """What a cohort asks of the backend that made it (`ElasticIndex`), named here so the
    backend imports the cohort and not the other way round."""

    runner: LoopRunner
    rankings: RankingCache

    def value_range(self, served: Served, field: str) -> tuple[int, int]: ...


class ElasticCohort(CohortView):
    """A cohort over the generation the backend served when the question was asked."""

    def __init__(self, owner: Cluster, served: Served, query: CohortQuery) -> None:
        self.owner = owner
        self.served = served
        nodes = question_nodes(query)
        self.text_node: Search | None = nodes.text_node
        self.node: Node = nodes.node
        self.query = cohort_query(self.node)
        self.counting = Counting(owner, served, self.node, self.query)

    async def _search(self, **body: Any) -> dict[str, Any]:
        return await self.owner.search(**body)

    # --- counts (see counting.py) ----------------------------------------------------

    @cached_property
    def _counts(self) -> Counts:
        return self.owner.runner.run(self.counting.counts())

    def counts(self) -> Counts:
        return self._counts

    # --- by source, facets, histogram -------------------------------------------------

    def by_source(self) -> dict[str, int]:
        aggs = {"s": {"terms": {"field": "sources", "size": MAX_SOURCES}}}
        answer = self.owner.runner.run(self._search(query=self.query, size=0, aggs=aggs))
        return {str(b["key"]): int(b["doc_count"]) for b in answer["aggregations"]["s"]["buckets"]}

    def facets(self, fields: list[str], size: int) -> list[Facet]:
        base.check_facets(fields, size)
        if not fields:
            return []
        aggs: dict[str, Any] = {}
        for i, name in enumerate(fields):
            aggs[f"t{i}"] = {
                "terms": {
                    "field": es_field(name),
                    "size": size,
                    "shard_size": max(size, FACET_SHARD_SIZE),
                    "order": [{"_count": "desc"}, {"_key": "asc"}],
                }
            }
            if name != "source":  # every series has a source
                aggs[f"m{i}"] = {"missing": {"field": es_field(name)}}
        answer = self.owner.runner.run(self._search(query=self.query, size=0, aggs=aggs))
        results = answer.get("aggregations", {})
        facets = []
        for i, name in enumerate(fields):
            terms = results[f"t{i}"]
            if terms.get("doc_count_error_upper_bound"):
                log.warning("facet %s counts may be approximate: raise FACET_SHARD_SIZE", name)
            buckets = sorted(
                (Bucket(str(b["key"]), int(b["doc_count"])) for b in terms["buckets"]),
                key=lambda b: (-b.count, b.key),
            )
            missing = int(results[f"m{i}"]["doc_count"]) if name != "source" else 0
            facets.append(Facet(name, buckets[:size], missing))
        return facets

    def histogram(self, field: str, interval: float) -> list[Bucket]:
        base.check_histogram_field(field, interval)
        low, high = self.owner.value_range(self.served, field)
        base.check_histogram_buckets(field, interval, low, high)
        is_date = FIELDS[field].kind is FieldKind.DATE
        step = interval * DAY_MS if is_date else interval
        aggs = {"h": {"histogram": {"field": field, "interval": step}}}
        answer = self.owner.runner.run(self._search(query=self.query, size=0, aggs=aggs))
        out = []
        for b in answer["aggregations"]["h"]["buckets"]:
            key = float(b["key"]) / DAY_MS if is_date else float(b["key"])
            out.append(Bucket(bucket_key(key, is_date), int(b["doc_count"])))
        return out

    # --- series -----------------------------------------------------------------------

    def series(self, first: int, after: str | None, sort: list[SortKey]) -> SeriesPage:
        base.check_page(first)
        ranked = self.text_node is not None
        clauses = sort_clauses(sort, ranked)
        signature = repr((self.served.key, self.node, sort))
        if ranked and "_score" in clauses[0]:
            descending = clauses[0]["_score"]["order"] == "desc"
            return self._ranked_page(first, after, descending, signature)
        return self._sorted_page(first, after, clauses, ranked, signature)

    def _sorted_page(
        self,
        first: int,
        after: str | None,
        clauses: list[dict[str, Any]],
        ranked: bool,
        signature: str,
    ) -> SeriesPage:
        """A page of a field or row order, by `search_after` on the sort values."""
        start, search_after, query, tail = 0, None, self.query, False
        if after:
            position = cursor.decode(after, signature, len(clauses))
            start, search_after = position.position, position.search_after
            if len(clauses) > 1 and search_after[0] is None:
                # Past the last series with a value (null is no valid `search_after` value
                # on every server): only series without one remain, in row order.
                field = next(iter(clauses[0]))
                query = {"bool": {"must": [query], "must_not": [{"exists": {"field": field}}]}}
                clauses, search_after, tail = list(ROW_ORDER), search_after[1:], True
        known = self.__dict__.get("_counts")  # the question already counted its series
        page = self._search(
            query=query,
            sort=clauses,
            size=first,
            search_after=search_after,
            track_total_hits=not tail and known is None,
            track_scores=ranked,
            source_includes=SOURCE_INCLUDES,
        )

        async def page_and_total() -> tuple[dict[str, Any], int]:
            if known is not None:
                return await page, known.series
            if not tail:
                answer = await page
                return answer, int(answer["hits"]["total"]["value"])
            answer, total = await asyncio.gather(page, self.counting.total())
            return answer, total

        answer, total = self.owner.runner.run(page_and_total())
        hits = answer["hits"]["hits"]
        cursors = []
        for i, hit in enumerate(hits):
            values = [None, *hit["sort"]] if tail else list(hit["sort"])
            cursors.append(cursor.encode(start + i + 1, values, signature))
        nodes = [_node(hit.get("_source") or {}) for hit in hits]
        if ranked:
            for node, hit in zip(nodes, hits, strict=True):
                node["score"] = hit.get("_score")
        return _page(total, nodes, cursors, start, first, after)

    def _ranked_page(
        self, first: int, after: str | None, descending: bool, signature: str
    ) -> SeriesPage:
        """A page of the BM25 order, by position in the cached ranking (see ranking.py)."""
        start = cursor.decode(after, signature, 0).position if after else 0
        key = (self.served.key, repr(self.node))
        ranking = self.owner.rankings.get(key)
        if ranking is None:
            ranking = self.owner.runner.run(rank(self.owner.search, self.query))
            self.owner.rankings.put(key, ranking)
        window = ranking.window(start, first, descending)
        ids = [uid for uid, _ in window]
        query = {"bool": {"filter": [{"ids": {"values": ids}}, {"term": {"primary": True}}]}}
        answer = self.owner.runner.run(
            self._search(query=query, size=len(ids), source_includes=SOURCE_INCLUDES)
        )
        found = {hit["_id"]: hit.get("_source") or {} for hit in answer["hits"]["hits"]}
        nodes = []
        for uid, score in window:
            if uid in found:  # a series replaced since the ranking was made is skipped
                nodes.append({**_node(found[uid]), "score": score})
        cursors = [cursor.encode(start + i + 1, [], signature) for i in range(len(nodes))]
        return _page(len(ranking.ids), nodes, cursors, start, first, after)


def _page(
    total: int,
    nodes: list[dict[str, Any]],
    cursors: list[str],
    start: int,
    first: int,
    after: str | None,
) -> SeriesPage:
    """A short page is the last one, whatever `total` says (it may have moved on)."""
    return SeriesPage(
        total=total,
        nodes=nodes,
        cursors=cursors,
        has_next=start + first < total and len(nodes) == first,
        end_cursor=cursors[-1] if cursors else after,
    )


def _node(source: dict[str, Any]) -> dict[str, Any]:
    """A series as the API shows it, from a document's `_source`."""
    node: dict[str, Any] = {name: source.get(name) for name in FIELDS}
    node["sources"] = list(source.get("sources") or [])
    for name in (*STORED_ONLY, "fetched_at"):
        node[name] = source.get(name)
    return node
