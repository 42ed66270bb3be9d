"""The embedded index: tantivy on disk plus numpy columns, nothing to install or start.

tantivy answers text (BM25), facets and histograms (its aggregation API) and stores
the documents; the numpy columns (see `columns.py`) give exact distinct counts and
cursor paging. Both belong to one generation directory; a new harvest builds a new
generation and flips `CURRENT`, which every open index notices within a second.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import tantivy

from hub.index.base import (
    MAX_HISTOGRAM_BUCKETS,
    Bucket,
    CohortQuery,
    Counts,
    Facet,
    IndexNotReady,
    LiveAnswer,
    QueryError,
    SeriesPage,
    SortKey,
    SourceSnapshotInfo,
    check_facets,
    check_histogram_field,
    check_page,
)
from hub.index.columns import ColumnStore, Rows
from hub.index.composite import CompositeColumns
from hub.index.generation import Generation, TantivyPart, open_generation, stored_documents
from hub.index.live import LiveRecords, attach
from hub.index.memo import DocumentCache, Memo, once
from hub.index.tantivy_query import EPOCH
from schema.filters import MATCH_ALL, And, Node, Search, fields_used
from schema.quoting import quote
from schema.record import FIELDS, TEXT_FIELDS, FieldKind

log = logging.getLogger(__name__)
MEMO_BYTES = 64 * 1024 * 1024
"""Row selections and rankings remembered per process (see `Memo`); an IDC-wide
selection is 8 MB, a typical one well under 1 MB."""
TEXT_MEMO_BYTES = 32 * 1024 * 1024
"""Rows each searched text matches: few words come back often ("lung", "brain"), and
finding a common one's rows again costs 20-100 ms."""
DOCUMENTS_KEPT = 20_000
"""Stored documents kept per process (see `DocumentCache`): ~30 MB for IDC's."""
RANKING_MIN = 1024
"""Hits ranked at least (then doubling as pages go deeper), so the first pages of a
text question do not rank every hit."""


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


class EmbeddedIndex:
    """The default index backend, under `<data_dir>/index`."""

    def __init__(self, data_dir: Path) -> None:
        self.root = data_dir / "index"
        self._lock = threading.Lock()
        self._gen: Generation | None = None
        self._checked = 0.0
        self.live = LiveRecords()
        self.memo = Memo(MEMO_BYTES)
        self.text_memo = Memo(TEXT_MEMO_BYTES)  # not pushed out by large row selections
        self.documents = DocumentCache(DOCUMENTS_KEPT)

    def generation(self) -> Generation:
        """The current generation, reopened when `CURRENT` has moved (checked once a second)."""
        now = time.monotonic()
        if self._gen is not None and now - self._checked < 1.0:
            return self._gen
        with self._lock:
            self._checked = now
            current = self.root / "CURRENT"
            if not current.is_file():
                raise IndexNotReady("the index has not been built yet; run `imaging-hub harvest`")
            name = current.read_text().strip()
            if self._gen is None or self._gen.name != name:
                gen = open_generation(self.root / name)
                self._gen = attach(gen, self.live) if self.live.table.num_rows else gen
            return self._gen

    def reopen(self, drop_live: Collection[str] = ()) -> None:
        """Read `CURRENT` again on the next question instead of within a second, first
        forgetting the live answers of `drop_live`: after a runtime source change
        (hub/registry/admin.py) the next answer must already reflect it."""
        self.live.drop(drop_live)
        with self._lock:
            self._gen = None
            self._checked = 0.0

    def add_live(self, source: str, batches: list[Any], ttl_s: float, priority: int = 100) -> None:
        """Merge a live source's answer into the index (kept for `ttl_s` seconds)."""
        self.add_live_many([LiveAnswer(source, batches, ttl_s, priority)])

    def add_live_many(self, answers: list[LiveAnswer]) -> None:
        """Merge several live answers at once: one pass, one new generation value."""
        self.live.upsert(answers)
        gen = self.generation()
        with self._lock:
            self._gen = attach(gen, self.live)

    def harvested_rows(self, gen: Generation, node: Node, compute: Callable[[], Rows]) -> Rows:
        """Rows of the harvested part a filter selects, remembered per generation: live
        answers leave them unchanged unless the filter names a source (live sources mark
        harvested series), so a question prepared while live sources are asked, or asked
        again for its next page, does not evaluate them twice."""
        live = gen.live_version if "source" in fields_used(node) else None
        return self.memo.get(("rows", gen.name, live, repr(node)), compute)

    def prepare(self, query: CohortQuery) -> None:
        """Evaluate the harvested part of a question (see `harvested_rows`), meant to run
        while the live sources are being asked."""
        try:
            cohort = self.cohort(query)
        except IndexNotReady:
            return
        self.harvested_rows(cohort.gen, cohort.node, cohort._harvested_rows)

    def warm_live(self) -> None:
        """Build what merging live answers needs (a sorted copy of the series dictionary,
        ~1 s for IDC) now, instead of during the first live query."""
        try:
            columns = self.generation().base_columns
        except IndexNotReady:
            return
        for name in ("series_uid", "study_uid", "patient_key"):
            columns.lookup(name, [])

    def close(self) -> None:
        """Nothing to release: generations are read-only and live parts live in memory."""

    def ready(self) -> bool:
        try:
            self.generation()
        except (IndexNotReady, OSError, ValueError):
            return False
        return True

    def cohort(self, query: CohortQuery) -> EmbeddedCohort:
        return EmbeddedCohort(self, self.generation(), query)

    def snapshots(self) -> list[SourceSnapshotInfo]:
        try:
            meta = self.generation().meta
        except IndexNotReady:
            return []
        return [
            SourceSnapshotInfo(s["source"], s["series"], s["harvested_at"], s.get("data_version"))
            for s in meta["snapshots"]
        ]


class EmbeddedCohort:
    """A cohort over one generation; the row mask and tantivy query are built once."""

    def __init__(self, owner: EmbeddedIndex, gen: Generation, query: CohortQuery) -> None:
        self.owner = owner
        self.gen = gen
        self.query = query
        text = (query.text or "").strip()
        self.text_node: Search | None = Search(text, TEXT_FIELDS) if text else None
        self.node: Node = (
            query.filter if self.text_node is None else And((query.filter, self.text_node))
        )

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
        for name in fields:
            columns = self.gen.columns
            if name != "source" and isinstance(columns, ColumnStore):  # no live part
                top, covered = columns.top_values(name, self.rows, size, self.outside)
                buckets = [Bucket(key, count) for key, count in top]
                facets.append(Facet(name, buckets, max(0, total - covered)))
                continue
            if name == "source":  # live sources of harvested series are known to the bits
                counted = {k: v for k, v in self.by_source().items() if v}
            else:
                counted = columns.value_counts(name, self.rows)
            buckets = sorted(
                (Bucket(key, count) for key, count in counted.items()),
                key=lambda b: (-b.count, b.key),
            )
            covered = sum(b.count for b in buckets)
            missing = 0 if name == "source" else max(0, total - covered)
            facets.append(Facet(name, buckets[:size], missing))
        return facets

    def histogram(self, field: str, interval: float) -> list[Bucket]:
        check_histogram_field(field, interval)
        low, high = self.gen.columns.value_range(field)
        if (high - low) / interval > MAX_HISTOGRAM_BUCKETS:
            raise QueryError(
                f"interval {interval} would give more than {MAX_HISTOGRAM_BUCKETS:,} buckets "
                f"over {field} (range {low}..{high}); use a larger interval"
            )
        counted = self.gen.columns.histogram(field, self.rows, interval)
        if counted:  # every bucket from the lowest to the highest, empty ones too
            low_bucket, high_bucket = min(counted), max(counted)
            counted = {i: counted.get(i, 0) for i in range(low_bucket, high_bucket + 1)}
        is_date = FIELDS[field].kind is FieldKind.DATE
        return [Bucket(_bucket_key(i * interval, is_date), c) for i, c in sorted(counted.items())]

    def series(self, first: int, after: str | None, sort: list[SortKey]) -> SeriesPage:
        check_page(first)
        if len(sort) > 1:
            raise QueryError(
                "sorting on more than one field is not supported yet; give one sort key"
            )
        # Not the live version: every other question's live answers move it, and a cursor
        # must survive them. Live series come after the harvested ones in row order, so
        # default pages stay put; sorted pages may shift if a live answer changed.
        signature = repr((self.gen.name, self.node, sort))
        start = _decode_cursor(after, signature) if after else 0
        total = len(self.rows)
        ranking = None
        if sort and sort[0].field != "score":
            rows = self._rows_sorted_by(sort[0], start + first)
        elif self.text_node is not None:
            best_first = not sort or sort[0].descending
            ranking = self._ranking(start + first if best_first else total)
            rows = ranking.rows if best_first else ranking.rows[::-1]
        else:
            rows = self.rows
        page_rows = [int(r) for r in rows[start : start + first]]
        nodes = self._documents(page_rows)
        if ranking is not None:
            for node, score in zip(nodes, ranking.scores_of(page_rows), strict=True):
                node["score"] = score
        cursors = [_encode_cursor(start + i + 1, signature) for i in range(len(page_rows))]
        return SeriesPage(
            total=total,
            nodes=nodes,
            cursors=cursors,
            has_next=start + first < total,
            end_cursor=cursors[-1] if cursors else after,
        )

    def _rows_sorted_by(self, key: SortKey, needed: int) -> npt.NDArray[np.int64]:
        """At least the first `needed` rows in `key` order (ties and missing values by
        row, missing last), remembered per question for the next pages; only as many
        as the pages reached so far are put in order, doubling from `RANKING_MIN`."""
        spec = FIELDS.get(key.field)
        if spec is None or spec.multi_valued:
            sortable = [n for n, s in FIELDS.items() if not s.multi_valued]
            raise QueryError(
                f"cannot sort on {quote(key.field)}; sortable: score, {', '.join(sortable)}"
            )
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


def _bucket_key(key: float, is_date: bool) -> str:
    if is_date:
        return (EPOCH + dt.timedelta(days=int(key))).isoformat()
    return str(int(key)) if float(key).is_integer() else str(key)


def _encode_cursor(position: int, signature: str) -> str:
    payload = json.dumps({"p": position, "s": _digest(signature)}).encode()
    return base64.urlsafe_b64encode(payload).decode()


def _decode_cursor(cursor: str, signature: str) -> int:
    try:
        payload = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        position = int(payload["p"])
        if payload["s"] != _digest(signature) or position < 0:
            raise ValueError
    except (ValueError, KeyError, TypeError, json.JSONDecodeError):
        raise QueryError(
            "the `after` cursor does not belong to this cohort query; start again without it"
        ) from None
    return position


def _digest(signature: str) -> str:
    return hashlib.blake2b(signature.encode(), digest_size=8).hexdigest()
