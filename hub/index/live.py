"""The live tier: series fetched from live sources, merged into the embedded index.

DESIGN.md: "Harvested records and live answers land in one index; ranking, facets,
de-duplication and paging all happen there." Live records are kept (per source, for
its cache time) in one Arrow table. Attaching them to a generation:

- a live series the index already holds (IDC mirrors TCIA) is not a new document:
  its `sources` gain the live source, so it is one hit counted once;
- the other live series become documents numbered after the harvested rows;
- tantivy gets the same documents (so BM25, facets and filters see one corpus), and
  the numpy side gets a small aligned live part (see `composite.py`).

Every attach builds a new `Generation` value; queries already running keep theirs.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import threading
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import tantivy

from adapters.batch import ARROW_SCHEMA
from hub.index.build import columns_sql, merge_sql, tantivy_json_sql
from hub.index.columns import ColumnStore, encode_columns, source_bits
from hub.index.composite import CompositeColumns, align_codes
from hub.index.generation import Generation, stored_documents

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

    def upsert(
        self, source: str, batches: list[pa.RecordBatch], ttl_s: float, priority: int
    ) -> None:
        now = dt.datetime.now(dt.UTC)
        new = (
            pa.Table.from_batches(batches, schema=ARROW_SCHEMA)
            if batches
            else ARROW_SCHEMA.empty_table()
        )
        n = new.num_rows
        for name, value in (("source", source), ("sources", [source]), ("fetched_at", now)):
            column = pa.array([value] * n, type=ARROW_SCHEMA.field(name).type)
            new = new.set_column(new.schema.get_field_index(name), name, column)
        new = new.append_column("_prio", pa.array([priority] * n, pa.int32()))
        with self.lock:
            self.ttl_s[source] = ttl_s
            old = self.table
            replaced = pc.and_(
                pc.equal(old["source"], source), pc.is_in(old["series_uid"], new["series_uid"])
            )
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


def attach(gen: Generation, live: LiveRecords) -> Generation:
    """A new generation value with `live` merged in (see module docstring)."""
    with live.lock:
        records, version = live.table, live.version
    main = gen.base_columns
    names = main.source_names + [s for s in live.sources() if s not in main.source_names]
    con = duckdb.connect(":memory:")
    con.register("live_raw", records)
    merged = con.sql(merge_sql("SELECT * FROM live_raw", one_source=False)).to_arrow_table()
    merged = merged.sort_by("row")
    codes = main.lookup("series_uid", merged["series_uid"].to_pylist())
    in_main = pa.array(codes != -1)
    main_rows = gen.row_of_series_code()[codes[codes != -1]]

    bits = np.array(main.codes("source.bits"), dtype=np.uint64)
    bits[main_rows] |= source_bits(merged.filter(in_main)["sources"], names)
    touched = sorted(set(gen.overlaid_rows) | {int(r) for r in main_rows})

    live_only = merged.filter(pc.invert(in_main))
    live_only = live_only.set_column(
        0, "row", pa.array(np.arange(main.rows, main.rows + live_only.num_rows, dtype=np.uint64))
    )
    con.register("live_only", live_only)
    encoded = encode_columns(con.sql(columns_sql("live_only")).to_arrow_table(), names)
    live_columns = align_codes(ColumnStore.from_encoded(encoded), main)
    columns = CompositeColumns(main.with_sources(bits, names), live_columns)

    con.register("overlaid", _overlaid_documents(gen, touched, bits, names))
    _journal(gen).write_text(json.dumps(touched))  # so a restart can restore them
    _rewrite(gen, con, touched, ["overlaid", "live_only"])
    return dataclasses.replace(
        gen,
        searcher=gen.index.searcher(),
        columns=columns,
        overlaid_rows=tuple(touched),
        live_version=version,
    )


def _journal(gen: Generation) -> Path:
    return gen.files.folder / "live-rows.json"


def restore_harvested(gen: Generation) -> None:
    """Undo the live documents an earlier process left in this generation's tantivy index:
    drop rows past the harvested ones, give overlaid series back their harvested sources.
    Needs the index writer; a process that cannot get it (the server holds it) skips this."""
    journal = _journal(gen)
    main = gen.base_columns
    if not journal.is_file() and gen.searcher.num_docs == main.rows:
        return
    rows = json.loads(journal.read_text()) if journal.is_file() else []
    con = duckdb.connect(":memory:")
    bits = np.asarray(main.codes("source.bits"))
    con.register("restored", _overlaid_documents(gen, rows, bits, main.source_names))
    _rewrite(gen, con, rows, ["restored"])
    journal.unlink(missing_ok=True)


def _rewrite(
    gen: Generation, con: duckdb.DuckDBPyConnection, rows: list[int], tables: list[str]
) -> None:
    """One commit: drop every live document and the harvested `rows`, then add the
    documents of `tables` (registered in `con`)."""
    schema = gen.index.schema
    with gen.write_lock:
        writer = gen.writer()
        writer.delete_documents_by_query(
            tantivy.Query.range_query(
                schema, "row", tantivy.FieldType.Unsigned, lower_bound=gen.base_columns.rows
            )
        )
        if rows:
            writer.delete_documents_by_query(tantivy.Query.term_set_query(schema, "row", rows))
        for table in tables:
            for batch in con.sql(tantivy_json_sql(table)).to_arrow_reader(10_000):
                for doc in batch.column(0).to_pylist():
                    writer.add_json(doc)
        writer.commit()
        gen.index.reload()


def _overlaid_documents(
    gen: Generation, rows: list[int], bits: np.ndarray, names: list[str]
) -> pa.Table:
    """Harvested documents of `rows`, with `sources` as the (overlaid) bits say."""
    docs = stored_documents(gen.index, gen.searcher, rows)
    for doc in docs:
        mask = int(bits[doc["row"]])
        doc["sources"] = [n for slot, n in enumerate(names) if mask & (1 << slot)]
        doc["study_date"] = dt.date.fromisoformat(doc["study_date"]) if doc["study_date"] else None
        doc["fetched_at"] = (
            dt.datetime.fromisoformat(doc["fetched_at"]) if doc["fetched_at"] else None
        )
    schema = pa.schema([pa.field("row", pa.uint64()), *ARROW_SCHEMA])
    return pa.Table.from_pylist(
        [{name: d.get(name) for name in schema.names} for d in docs], schema=schema
    )
