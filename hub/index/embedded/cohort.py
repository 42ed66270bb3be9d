"""One cohort question over the embedded index: a row selection over one generation.

The rows a question selects are computed once (numpy columns, tantivy for text) and
shared by its counts, facets, histogram and pages; selections and rankings are also
remembered by the index that made the cohort, for the next page and the next question.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import tantivy

from hub.index import cursor
from hub.index.base import (
    Bucket,
    CohortQuery,
    Counts,
    Facet,
    SeriesPage,
    SortKey,
    check_facets,
    check_histogram_buckets,
    check_histogram_field,
    check_page,
    check_sort,
)
from hub.index.common import bucket_key, question_nodes
from hub.index.embedded.columns import ColumnStore, Rows
from hub.index.embedded.composite import CompositeColumns
from hub.index.embedded.generation import Generation, TantivyPart, stored_documents
from hub.index.embedded.live import LiveRecords
from hub.index.embedded.memo import DocumentCache, Memo, once
from hub.index.embedded.records import corpus_file, parquet_chunks
from hub.index.protocol import CHUNK_ROWS, CohortView, Record
from schema.filters import MATCH_ALL, Node, Search
from schema.record import FIELDS, FieldKind

RANKING_MIN = 1024
"""Hits ranked at least (then doubling as pages go deeper), so the first pages of a
text question do not rank every hit."""


class Owner(Protocol):
    """What a cohort asks of the index that made it (`EmbeddedIndex`), named here so the
    index imports the cohort and not the other way round."""

    live: LiveRecords
    memo: Memo
    text_memo: Memo
    documents: DocumentCache

    def harvested_rows(self, gen: Generation, node: Node, compute: Callable[[], Rows]) -> Rows: ...


@dataclass
class Ranking:
    """Rows of a text query in BM25 order, with their scores."""

    rows: npt.NDArray[np.int64]
    scores: npt.NDArray[np.float64]

    @once
    def _order(self) -> npt.NDArray[np.int64]:
        return np.argsort(self.rows, kind="stable")

    def scores_of(self, rows: list[int]) -> list[float | None]:
        position = np.searchsorted(self.rows, rows, sorter=self._order)
        out: list[float | None] = []
        for row, pos in zip(rows, position, strict=True):
            i = self._order[pos] if pos < len(self.rows) else None
            out.append(float(self.scores[i]) if i is not None and self.rows[i] == row else None)
        return out


class EmbeddedCohort(CohortView):
    """A cohort over one generation; the row mask and tantivy query are built once."""

    def __init__(self, owner: Owner, gen: Generation, query: CohortQuery) -> None:
        self.owner = owner
        self.gen = gen
        self.query = query
        nodes = question_nodes(query)
        self.text_node: Search | None = nodes.text_node
        self.node: Node = nodes.node

    @once
    def tantivy_query(self) -> tantivy.Query:
        """The filter on the harvested index (live-only rows are counted from numpy)."""
        return self.gen.main.compiler.compile(self.node)

    @once
    def rows(self) -> Rows:
        """The selected rows, ascending: the harvested part's (remembered by the index, see
        `EmbeddedIndex.harvested_rows`), then the live part's."""
        harvested = self.owner.harvested_rows(self.gen, self.node, self._harvested_rows)
        columns = self.gen.columns
        if not isinstance(columns, CompositeColumns) or not columns.live.rows:
            return harvested
        assert self.gen.live is not None
        live_part = self.gen.live
        live = columns.live.mask(self.node, lambda s: _text_rows(live_part.tantivy(), s))
        return np.concatenate([harvested, np.flatnonzero(live) + columns.main.rows])

    @once
    def outside(self) -> Rows | None:
        """The rows not selected, when they are fewer than those selected: facets of a
        cohort of most of the corpus count them and subtract (4 ms a facet down to 1)."""
        if 2 * len(self.rows) <= self.gen.columns.rows:
            return None
        mask = np.ones(self.gen.columns.rows, dtype=bool)
        mask[self.rows] = False
        return np.flatnonzero(mask)

    @property
    def mask(self) -> npt.NDArray[np.bool_]:
        mask = np.zeros(self.gen.columns.rows, dtype=bool)
        mask[self.rows] = True
        return mask

    def _harvested_rows(self) -> Rows:
        columns = self.gen.columns
        main = columns.main if isinstance(columns, CompositeColumns) else columns
        if self.node == MATCH_ALL:
            rows = np.arange(main.rows, dtype=np.int64)
        else:
            rows = main.select(self.node, self._harvested_text_rows)
        rows.setflags(write=False)  # shared through the memo
        return rows

    def _harvested_text_rows(self, node: Search) -> npt.NDArray[np.int64]:
        """Rows a text node matches, remembered per generation: the same words come
        with many filters."""
        key = ("text", self.gen.name, repr(node))
        return self.owner.text_memo.get(key, lambda: _text_rows(self.gen.main, node))

    # --- the cohort answers --------------------------------------------------------

    def counts(self) -> Counts:
        cols, rows = self.gen.columns, self.rows
        return Counts(
            patients=cols.distinct("patient_key", rows),
            studies=cols.distinct("study_uid", rows),
            series=len(rows),
        )

    def by_source(self) -> dict[str, int]:
        return self.gen.columns.per_source(self.rows)

    def facets(self, fields: list[str], size: int) -> list[Facet]:
        check_facets(fields, size)
        if not fields:
            return []
        total = len(self.rows)
        facets = []
        columns = self.gen.columns
        for name in fields:
            if name == "source":  # live sources of harvested series are known to the bits
                counted = {k: v for k, v in self.by_source().items() if v}
                buckets = sorted(
                    (Bucket(key, count) for key, count in counted.items()),
                    key=lambda b: (-b.count, b.key),
                )
                facets.append(Facet(name, buckets[:size], 0))
                continue
            top, covered = columns.top_values(name, self.rows, size, self.outside)
            buckets = [Bucket(key, count) for key, count in top]
            facets.append(Facet(name, buckets, max(0, total - covered)))
        return facets

    def histogram(self, field: str, interval: float) -> list[Bucket]:
        check_histogram_field(field, interval)
        low, high = self.gen.columns.value_range(field)
        check_histogram_buckets(field, interval, low, high)
        counted = self.gen.columns.histogram(field, self.rows, interval)
        if counted:  # every bucket from the lowest to the highest, empty ones too
            low_bucket, high_bucket = min(counted), max(counted)
            counted = {i: counted.get(i, 0) for i in range(low_bucket, high_bucket + 1)}
        is_date = FIELDS[field].kind is FieldKind.DATE
        return [Bucket(bucket_key(i * interval, is_date), c) for i, c in sorted(counted.items())]

    def series(self, first: int, after: str | None, sort: list[SortKey]) -> SeriesPage:
        check_page(first)
        key = check_sort(sort)
        # Not the live version: every other question's live answers move it, and a cursor
        # must survive them. Live series come after the harvested ones in row order, so
        # default pages stay put; sorted pages may shift if a live answer changed.
        signature = repr((self.gen.name, self.node, sort))
        start = cursor.decode(after, signature, 0).position if after else 0
        total = len(self.rows)
        ranking = None
        if key is not None and key.field != "score":
            rows = self._rows_sorted_by(key, start + first)
        elif self.text_node is not None:
            best_first = key is None or key.descending
            ranking = self._ranking(start + first if best_first else total)
            rows = ranking.rows if best_first else ranking.rows[::-1]
        else:
            rows = self.rows
        page_rows = [int(r) for r in rows[start : start + first]]
        nodes = self._documents(page_rows)
        if ranking is not None:
            for node, score in zip(nodes, ranking.scores_of(page_rows), strict=True):
                node["score"] = score
        cursors = [cursor.encode(start + i + 1, [], signature) for i in range(len(page_rows))]
        return SeriesPage(
            total=total,
            nodes=nodes,
            cursors=cursors,
            has_next=start + first < total,
            end_cursor=cursors[-1] if cursors else after,
        )

    # --- the fast paths -----------------------------------------------------------

    def record_chunks(
        self,
        limit: int | None = None,
        chunk_rows: int = CHUNK_ROWS,
        columns: list[str] | None = None,
    ) -> Iterator[list[Record]]:
        """From the generation's parquet corpus (see `records.py`), when it has one."""
        if corpus_file(self.gen) is None:
            return super().record_chunks(limit, chunk_rows, columns)
        rows = self.rows if limit is None else self.rows[:limit]
        return parquet_chunks(self.gen, rows, self.owner.live.table, chunk_rows, columns)

    def series_window(self, offset: int, limit: int) -> tuple[list[dict[str, Any]], int]:
        """Browse order is row order: only the window's documents are read."""
        if self.text_node is not None:  # browse order of a text question is BM25's
            return super().series_window(offset, limit)
        wanted = [int(r) for r in self.rows[offset : offset + limit]]
        return self._documents(wanted), len(self.rows)

    def study_window(self, offset: int, limit: int) -> tuple[list[str], int]:
        """From the study column of a harvested generation (no live part): first rows of
        each distinct study, in row order."""
        columns = self.gen.columns
        if self.text_node is not None or not isinstance(columns, ColumnStore):
            return super().study_window(offset, limit)
        codes = np.asarray(columns.codes("study_uid"))[self.rows]
        unique, first = np.unique(codes, return_index=True)
        ordered = unique[np.argsort(first, kind="stable")]
        page = pa.array(ordered[offset : offset + limit], pa.int64())
        return columns.dictionary("study_uid").take(page).to_pylist(), len(unique)

    def _rows_sorted_by(self, key: SortKey, needed: int) -> npt.NDArray[np.int64]:
        """At least the first `needed` rows in `key` order (ties and missing values by
        row, missing last), remembered per question for the next pages; only as many
        as the pages reached so far are put in order, doubling from `RANKING_MIN`."""
        limit = _doubled(RANKING_MIN, needed, len(self.rows))
        memo_key = (self.gen.name, self.gen.live_version, repr(self.node), key, limit)
        return self.owner.memo.get(("sorted", memo_key), lambda: self._sort(key, limit))

    def _sort(self, key: SortKey, limit: int) -> npt.NDArray[np.int64]:
        rows = self.rows
        values, present = self.gen.columns.sort_values(key.field, rows)
        if not len(rows):
            return rows
        ranks = -values if key.descending else values
        if present.any():  # from 0 up, missing values one past the largest
            ranks = ranks - ranks[present].min()
            ranks[~present] = ranks[present].max() + 1
        else:
            ranks = np.zeros_like(ranks)
        if int(ranks.max()) >= (1 << 62) // len(rows):  # no room for the row in one key
            return rows[np.lexsort((rows, ranks))][:limit]
        order_key = ranks * len(rows) + np.arange(len(rows))  # unique: (rank, row) order
        if limit < len(rows):
            top = np.argpartition(order_key, limit - 1)[:limit]
            return rows[top[np.argsort(order_key[top])]]
        return rows[np.argsort(order_key)]

    def _ranking(self, needed: int) -> Ranking:
        """The best `needed` hits or more in BM25 order, remembered per generation and
        question for the next pages; the number ranked doubles from `RANKING_MIN`."""
        limit = max(1, _doubled(RANKING_MIN, needed, len(self.rows)))
        key = (self.gen.name, self.gen.live_version, repr(self.node), limit)
        return self.owner.memo.get(("ranking", key), lambda: self._rank(limit))

    def _rank(self, limit: int) -> Ranking:
        rows: list[int] = []
        scores: list[float] = []
        for part in self.gen.text_parts():
            query = part.compiler.compile(self.node)
            hits = part.searcher.search(query, limit=limit, count=False).hits
            values = part.searcher.fast_field_values("row", [h[1] for h in hits])
            rows += [int(v) for v in values if v is not None]
            scores += [h[0] for h in hits]
        order = np.argsort(-np.asarray(scores, dtype=float), kind="stable")[:limit]
        return Ranking(
            np.asarray(rows, dtype=np.int64)[order], np.asarray(scores, dtype=float)[order]
        )

    def _documents(self, rows: list[int]) -> list[dict[str, Any]]:
        main = self.gen.main
        harvested = self.gen.base_columns.rows
        mine = [r for r in rows if r < harvested]
        addresses = self.gen.files.addresses
        found = self.owner.documents.get_many(
            self.gen.name,
            mine,
            lambda missing: stored_documents(main.index, main.searcher, missing, addresses),
        )
        by_row = {d["row"]: d for d in found}
        if self.gen.live is not None:
            live_rows = [r for r in rows if r >= harvested]
            by_row.update((d["row"], d) for d in self.gen.live.documents(live_rows))
        columns = self.gen.columns
        if isinstance(columns, CompositeColumns):  # harvested series live sources also hold
            for row, doc in by_row.items():
                if row < columns.main.rows:
                    doc["sources"] = columns.main.sources_of(row)
        return [by_row[r] for r in rows if r in by_row]


def _text_rows(part: TantivyPart, node: Search) -> npt.NDArray[np.int64]:
    """Rows of one tantivy part matching a text node (the numpy side has no text)."""
    limit = max(1, part.searcher.num_docs)
    query = part.compiler.compile(node)
    hits = part.searcher.search(query, limit=limit, count=False, order_by_field="row").hits
    return np.fromiter((h[0] for h in hits), dtype=np.int64, count=len(hits))


def _doubled(start: int, needed: int, cap: int) -> int:
    """`start` doubled until it covers `needed`, at most `cap`: how deep to order."""
    limit = start
    while limit < needed:
        limit *= 2
    return min(limit, cap)
