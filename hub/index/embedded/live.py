"""The live tier: series fetched from live sources, merged into the embedded index.

DESIGN.md: "Harvested records and live answers land in one index; ranking, facets,
de-duplication and paging all happen there." Live records are kept (per source, for
its cache time) in one Arrow table. Attaching them to a generation:

- a live series the harvested index already holds (IDC mirrors TCIA) is not a new
  document: it gains the live source (in the numpy source bits, and in the query
  compiler's `source_rows`), so it is one hit, counted once;
- the other live series get rows numbered after the harvested ones, in an aligned
  numpy part (see `composite.py`) and an Arrow table of their documents; their
  in-memory tantivy index is built only when a text question needs it (building one
  costs ~15 ms, most of a live query's own time).

The harvested files are never written to. Every attach builds a new `Generation`
value; queries already running keep theirs.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from collections.abc import Collection

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import tantivy

from adapters.batch import ARROW_SCHEMA
from hub.index.base import LiveAnswer
from hub.index.embedded.build import BROWSE, merge_sql, tantivy_json_sql
from hub.index.embedded.columns import MISSING, ColumnStore, encode_columns, source_bits
from hub.index.embedded.composite import CompositeColumns, align_codes
from hub.index.embedded.generation import Generation, LivePart, TantivyPart
from hub.index.embedded.tantivy_query import QueryCompiler, build_schema

MIN_RETENTION_S = 60.0


class LiveRecords:
    """Live answers by source, replaced per series on each fetch, dropped after their TTL
    (but never sooner than MIN_RETENTION_S: a series a source stopped returning can thus
    linger that long; the planner's answer cache is what `cache_ttl_s` governs)."""

    def __init__(self) -> None:
        self.table: pa.Table = ARROW_SCHEMA.empty_table().append_column(
            "_prio", pa.array([], pa.int32())
        )
        self.ttl_s: dict[str, float] = {}
        self.version = 0
        self.lock = threading.Lock()
        self.memory = MemoryIndex()

    def upsert(self, answers: list[LiveAnswer]) -> None:
        """Replace each source's copies of the series it answered, drop what has expired,
        in one pass over the table however many sources answered."""
        now = dt.datetime.now(dt.UTC)
        new = pa.concat_tables([_tagged(answer, now) for answer in answers])
        with self.lock:
            self.ttl_s.update((a.source, a.ttl_s) for a in answers)
            old = self.table
            replaced = pc.is_in(_source_series(old), _source_series(new))
            keep = pc.and_(pc.invert(replaced), self._fresh(old, now))
            self.table = pa.concat_tables([old.filter(keep), new])
            self.version += 1

    def _fresh(self, table: pa.Table, now: dt.datetime) -> pa.Array:
        fresh = pa.array([True] * table.num_rows, type=pa.bool_())
        for source, ttl in self.ttl_s.items():
            # kept at least MIN_RETENTION_S, so a query in flight still finds its answer
            cutoff = now - dt.timedelta(seconds=max(ttl, MIN_RETENTION_S))
            stale = pc.and_(pc.equal(table["source"], source), pc.less(table["fetched_at"], cutoff))
            fresh = pc.and_(fresh, pc.invert(stale))
        return fresh

    def sources(self) -> list[str]:
        return sorted(set(self.table["source"].to_pylist()))

    def drop(self, sources: Collection[str]) -> None:
        """Forget every answer of these sources at once (disabled or removed at runtime)."""
        if not sources:
            return
        with self.lock:
            gone = pc.is_in(self.table["source"], value_set=pa.array(sorted(sources), pa.string()))
            self.table = self.table.filter(pc.invert(gone))
            for source in sources:
                self.ttl_s.pop(source, None)
            self.version += 1


def _tagged(answer: LiveAnswer, now: dt.datetime) -> pa.Table:
    """The answer's records as fetched by `answer.source` now, with its priority."""
    schema = ARROW_SCHEMA
    table = pa.Table.from_batches(answer.batches, schema=schema)
    n = table.num_rows
    for name, value in (
        ("source", answer.source),
        ("sources", [answer.source]),
        ("fetched_at", now),
    ):
        column = pa.array([value] * n, type=schema.field(name).type)
        table = table.set_column(schema.get_field_index(name), name, column)
    return table.append_column("_prio", pa.array([answer.priority] * n, pa.int32()))


def _source_series(table: pa.Table) -> pa.Array:
    return pc.binary_join_element_wise(table["source"], table["series_uid"], "\x1f")


def attach(gen: Generation, live: LiveRecords) -> Generation:
    """A new generation value with `live` merged in (see module docstring)."""
    with live.lock:
        records, version = live.table, live.version
    main = gen.base_columns
    names = main.source_names + [s for s in live.sources() if s not in main.source_names]
    merged = live.memory.merged(records)
    codes = main.lookup("series_uid", merged["series_uid"].to_pylist())
    known = codes != MISSING
    main_rows = gen.files.row_of_series_code()[codes[known]]

    bits = main.codes("source.bits")
    shared_bits = source_bits(merged.filter(pa.array(known))["sources"], names)
    if len(main_rows):  # copy the harvested bits (8 MB for IDC) only when they change
        bits = np.array(bits, dtype=np.uint64)
        bits[main_rows] |= shared_bits
    overlay = {
        name: main_rows[(shared_bits & np.uint64(1 << slot)) != 0].tolist()
        for slot, name in enumerate(names)
    }

    live_only = merged.filter(pa.array(~known))
    live_only = live_only.add_column(
        0, "row", pa.array(np.arange(main.rows, main.rows + live_only.num_rows, dtype=np.uint64))
    )
    encoded = encode_columns(live_only, names)
    live_columns = align_codes(ColumnStore.from_encoded(encoded), main)
    return dataclasses.replace(
        gen,
        main=dataclasses.replace(gen.main, compiler=QueryCompiler(gen.index.schema, overlay)),
        columns=CompositeColumns(main.with_sources(bits, names), live_columns),
        live=LivePart(live_only, live.memory.build),
        live_version=version,
    )


class MemoryIndex:
    """SQL work on the live records: merging copies of one series, and building the
    live-only series' tantivy index in memory (no files, no fsync) when a text question
    needs it. One DuckDB connection (opening one costs ~30 ms), used under a lock."""

    def __init__(self) -> None:
        self.schema = build_schema()
        self.con = duckdb.connect(":memory:")
        self.lock = threading.Lock()

    def merged(self, records: pa.Table) -> pa.Table:
        """One row per series in browse order (the `merge_sql` rules), without `row`."""
        if pc.count_distinct(records["series_uid"]).as_py() == records.num_rows:
            return records.drop_columns(["_prio"]).sort_by([(c, "ascending") for c in BROWSE])
        with self.lock:
            self.con.register("live_raw", records)
            merged = self.con.sql(merge_sql("SELECT * FROM live_raw", one_source=False))
            return merged.to_arrow_table().sort_by("row").drop_columns(["row"])

    def build(self, table: pa.Table) -> TantivyPart:
        index = tantivy.Index(self.schema)
        writer = index.writer(heap_size=15_000_000, num_threads=1)
        with self.lock:
            self.con.register("live_only", table)
            for batch in self.con.sql(tantivy_json_sql("live_only")).to_arrow_reader(10_000):
                for doc in batch.column(0).to_pylist():
                    writer.add_json(doc)
        writer.commit()
        writer.wait_merging_threads()
        index.reload()
        return TantivyPart(index, index.searcher(), QueryCompiler(index.schema))
