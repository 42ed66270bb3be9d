"""Exact counts of one cohort: series, studies, patients (DESIGN.md's counting rules).

Series are the hits total of the cohort query (`track_total_hits`). Studies and
patients are counted one of two ways, both exact on every server (the `cardinality`
aggregation is an estimate, and `terms` over study uids hits the bucket limit):

- levels (the fast one): the hits totals of the level indices (`levels.py`) under the
  filter nested on their series, one round trip each, whatever the cohort's size;
- composite (the general one): the buckets of a composite aggregation on `study_uid`
  / `patient_key` over the series, paged to its end (cost grows with the cohort).

The level indices are built from harvested snapshots only, so they are used when they
answer for exactly what the read alias serves:
- both level indices are served and were built from the snapshots the harvested
  indices hold (`built_from` = their `harvested_at`), else composite (a publish is
  under way, or died between its series swap and its level swap);
- no live answer can change the answer. Live answers add series the level documents
  lack, and add their source to the `sources` of harvested copies they also hold.
  Both kinds of touched copy carry a live source in `sources`, so one count decides:
  primary copies that match the query and list a live source (any primary copy that
  lists one, when the filter tests `source`: the level documents keep the harvested
  `sources`, so there a touched copy can differ either way). None: levels; else
  composite for this question. No live index served: no extra request at all.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from hub.index.base import Counts
from hub.index.elastic.dsl import Query, level_query
from hub.index.elastic.layout import LEVELS, Served
from hub.index.elastic.levels import built_from_served
from hub.index.elastic.mapping import PATIENT_KEY
from schema.filters import Compare, In, IsMissing, Node, walk

COMPOSITE_PAGE = 50_000  # under the default search.max_buckets (65,535 on OpenSearch)
LEVELS_METHOD = "levels"
COMPOSITE_METHOD = "composite"


class Searcher(Protocol):
    """Searches over the read alias, and over one named index."""

    async def search(self, **body: Any) -> dict[str, Any]: ...

    async def search_in(self, index: str, **body: Any) -> dict[str, Any]: ...


class Counting:
    """The counts of one cohort query over one served generation."""

    def __init__(self, owner: Searcher, served: Served, node: Node, query: Query) -> None:
        self.owner = owner
        self.served = served
        self.node = node
        self.query = query
        self.method = ""
        """How studies and patients were counted: `levels` or `composite` (tests, logs)."""

    async def counts(self) -> Counts:
        levels = await self.usable_levels()
        if levels is None:
            self.method = COMPOSITE_METHOD
            distinct = (self.distinct("study_uid"), self.distinct(PATIENT_KEY))
        else:
            self.method = LEVELS_METHOD
            distinct = (self._level_total(levels["studies"]), self._level_total(levels["patients"]))
        series, studies, patients = await asyncio.gather(self.total(), *distinct)
        return Counts(patients=patients, studies=studies, series=series)

    async def total(self) -> int:
        answer = await self.owner.search(query=self.query, size=0, track_total_hits=True)
        return int(answer["hits"]["total"]["value"])

    async def usable_levels(self) -> dict[str, str] | None:
        """The level index of each level, if they answer for this question (module doc)."""
        by_level = {str(i.meta.get("level")): i for i in self.served.levels}
        if sorted(by_level) != sorted(LEVELS) or len(self.served.levels) != len(LEVELS):
            return None
        wanted = built_from_served(self.served.indices)
        if any(i.meta.get("built_from") != wanted for i in by_level.values()):
            return None
        live = sorted({i.source for i in self.served.indices if i.kind == "live"})
        if live and await self._touched_by_live(live):
            return None
        return {level: info.name for level, info in by_level.items()}

    async def _touched_by_live(self, live: list[str]) -> bool:
        tests_source = any(
            isinstance(n, Compare | In | IsMissing) and n.field == "source" for n in walk(self.node)
        )
        scope = {"term": {"primary": True}} if tests_source else self.query
        query = {"bool": {"filter": [scope, {"terms": {"sources": live}}]}}
        answer = await self.owner.search(query=query, size=0, track_total_hits=True)
        return int(answer["hits"]["total"]["value"]) > 0

    async def _level_total(self, index: str) -> int:
        answer = await self.owner.search_in(
            index, query=level_query(self.node), size=0, track_total_hits=True
        )
        return int(answer["hits"]["total"]["value"])

    async def distinct(self, field: str) -> int:
        """Exact distinct values of `field` in the cohort: a composite aggregation, paged."""
        count, after = 0, None
        while True:
            composite: dict[str, Any] = {
                "size": COMPOSITE_PAGE,
                "sources": [{"v": {"terms": {"field": field}}}],
            }
            if after is not None:
                composite["after"] = after
            answer = await self.owner.search(
                query=self.query,
                size=0,
                track_total_hits=False,
                aggs={"d": {"composite": composite}},
                filter_path="aggregations.d.after_key,aggregations.d.buckets.doc_count",
            )
            agg = answer.get("aggregations", {}).get("d", {})
            buckets = agg.get("buckets", [])
            count += len(buckets)
            after = agg.get("after_key")
            if len(buckets) < COMPOSITE_PAGE or after is None:
                return count
