"""Build one embedded-index generation from the current source snapshots.

Snapshots are merged by series (the same series from two repositories becomes one
document whose `sources` lists both, fields taken from the higher-priority source),
ordered by collection, patient, study and series, numbered by `row`, then written
three times: as tantivy documents, as numpy columns, and as `corpus.parquet` (row
order, with each series' download location in every repository holding it) that
exports stream from. The generation becomes visible only when `CURRENT` is switched to
it, atomically, after all are complete.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import tantivy

from adapters.batch import ARROW_SCHEMA
from hub.index.embedded.columns import KEYWORD_COLUMNS, NUMERIC_COLUMNS, encode_columns
from hub.index.embedded.generation import ADDRESSES_FILE, document_addresses
from hub.index.embedded.tantivy_query import (
    FETCHED_AT,
    PRESENCE_TERMS,
    PRESENT,
    RAW_SUFFIX,
    build_schema,
)
from hub.index.merge import merged_columns_sql, sql_literal
from hub.index.snapshots import Snapshot
from hub.index.staging import partial_of, remove_all_but
from schema.record import FIELDS, RECORD_COLUMNS, TEXT_FIELDS, FieldKind

BATCH_ROWS = 50_000
CORPUS_FILE = "corpus.parquet"
CORPUS_ROW_GROUP = 50_000
"""Rows per parquet row group: an export reads one group at a time (constant memory)."""
BROWSE = ("collection", "patient_id", "study_uid", "series_uid")
"""The order series are numbered in (`row`), and listed in without a sort key."""


def merged_sql(snapshots: Sequence[Snapshot], priorities: dict[str, int]) -> tuple[str, list[Any]]:
    """SQL of the merged, ordered, row-numbered corpus; file paths travel as parameters."""
    if not snapshots:  # only live sources: an empty generation they can be merged into
        return "SELECT 0::UBIGINT AS row, *, 0 AS _prio FROM empty_corpus WHERE FALSE", []
    parts = ["SELECT *, ? AS _prio FROM read_parquet(?)" for _ in snapshots]
    params: list[Any] = []
    for snap in snapshots:
        params += [priorities.get(snap.source, 100), str(snap.path)]
    return merge_sql(" UNION ALL ".join(parts), one_source=len(snapshots) == 1), params


def merge_sql(copies: str, one_source: bool) -> str:
    """One row per series from all copies (a `_prio` column: lowest wins field values,
    ties by source name; `sources` is the union, see `hub.index.merge`), numbered from 0
    in browse order."""
    order = "ORDER BY " + ", ".join(BROWSE)
    number = f"(row_number() OVER ({order}) - 1)::UBIGINT AS row"
    if one_source:  # nothing to merge
        return f"SELECT {number}, * EXCLUDE (_prio) FROM ({copies})"
    sql = f"""
        WITH all_copies AS ({copies}),
        merged AS (
          SELECT {merged_columns_sql("(_prio, source)")}
          FROM all_copies GROUP BY series_uid
        )
        SELECT {number}, * FROM merged
    """
    return sql


def tantivy_json_sql(table: str = "corpus") -> str:
    """One JSON document per row, as tantivy's `add_json` takes it."""
    present = ", ".join(f"CASE WHEN {n} IS NOT NULL THEN '{n}' END" for n in PRESENCE_TERMS)
    pairs = [
        "'row', row",
        "'sources', sources",
        "'source', source",
        f"'{PRESENT}', list_filter([{present}], lambda v: v IS NOT NULL)",
    ]
    for name, spec in FIELDS.items():
        if name == "source":
            continue
        if spec.kind is FieldKind.DATE:
            pairs.append(f"'{name}', ({name} - DATE '1970-01-01')")
        else:
            pairs.append(f"'{name}', {name}")
        if name in TEXT_FIELDS:
            pairs.append(f"'{name}{RAW_SUFFIX}', {name}")
    pairs += [
        "'viewer_url', viewer_url",
        "'download_url', download_url",
        f"'fetched_at', strftime(fetched_at AT TIME ZONE 'UTC', '{FETCHED_AT}')",
    ]
    doc = f"json_merge_patch('{{}}', json_object({', '.join(pairs)}))::VARCHAR"
    return f"SELECT {doc} AS doc FROM {table} ORDER BY row"


def build_generation(
    index_root: Path,
    snapshots: Sequence[Snapshot],
    priorities: dict[str, int],
    progress: Callable[[int], Any] | None = None,
) -> Path:
    """Write a complete new generation under `index_root` and switch `CURRENT` to it."""
    index_root.mkdir(parents=True, exist_ok=True)
    gen = index_root / f"gen-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S%f}"
    partial = partial_of(gen)
    try:
        con = duckdb.connect(":memory:")
        con.register("empty_corpus", ARROW_SCHEMA.empty_table())
        sql, params = merged_sql(snapshots, priorities)
        con.execute(f"CREATE TABLE corpus AS {sql}", params)
        sources = [s.source for s in snapshots]
        with ThreadPoolExecutor(1) as pool:  # numpy/arrow work overlaps tantivy indexing
            columns = pool.submit(_write_columns, con.cursor(), partial / "columns", sources)
            corpus = pool.submit(_write_corpus, con.cursor(), partial / CORPUS_FILE, snapshots)
            _write_tantivy(con, partial / "tantivy", progress)
            rows = columns.result()
            corpus.result()
        meta = {
            "rows": rows,
            "built_at": dt.datetime.now(dt.UTC).isoformat(),
            "snapshots": [
                {
                    "source": s.source,
                    "series": s.series,
                    "harvested_at": s.harvested_at,
                    "data_version": s.data_version,
                }
                for s in snapshots
            ],
        }
        (partial / "generation.json").write_text(json.dumps(meta, indent=2))
        con.close()
        partial.rename(gen)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    switch_current(index_root, gen.name)
    return gen


def switch_current(index_root: Path, name: str) -> None:
    """Point `CURRENT` at a generation (atomic rename) and drop the older ones."""
    tmp = index_root / "CURRENT.partial"
    tmp.write_text(name)
    os.replace(tmp, index_root / "CURRENT")
    remove_all_but(index_root, "gen-*", name)  # older generations, killed builds' partials


def _write_columns(con: duckdb.DuckDBPyConnection, folder: Path, sources: list[str]) -> int:
    names = ", ".join(["sources", *KEYWORD_COLUMNS, *NUMERIC_COLUMNS])
    table = con.sql(f"SELECT {names} FROM corpus ORDER BY row").to_arrow_table()
    encode_columns(table, sources).save(folder)
    return int(table.num_rows)


def corpus_sql(snapshots: Sequence[Snapshot]) -> str:
    """The corpus in row order, canonical columns plus `locations`: one {source, url} per
    repository copy with a download URL (the merged `download_url` is only the winner's)."""
    columns = ", ".join(f"c.{name}" for name in ("row", *RECORD_COLUMNS))
    located = "STRUCT(source VARCHAR, url VARCHAR)[]"
    if len(snapshots) <= 1:
        one = "[{'source': c.source, 'url': c.download_url}]"
        return f"""SELECT {columns},
                   CASE WHEN c.download_url IS NULL THEN []::{located} ELSE {one} END AS locations
                   FROM corpus c ORDER BY c.row"""
    copies = " UNION ALL ".join(
        f"SELECT source, series_uid, download_url FROM read_parquet({sql_literal(str(s.path))})"
        for s in snapshots
    )
    return f"""
        WITH copies AS ({copies}),
        located AS (
          SELECT series_uid, list({{'source': source, 'url': download_url}} ORDER BY source)
                 AS locations
          FROM copies WHERE download_url IS NOT NULL GROUP BY series_uid
        )
        SELECT {columns}, coalesce(l.locations, []::{located}) AS locations
        FROM corpus c LEFT JOIN located l ON l.series_uid = c.series_uid ORDER BY c.row
    """


def _write_corpus(
    con: duckdb.DuckDBPyConnection, path: Path, snapshots: Sequence[Snapshot]
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    con.execute(
        f"COPY ({corpus_sql(snapshots)}) TO {sql_literal(str(path))} "
        f"(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {CORPUS_ROW_GROUP})"
    )


def _write_tantivy(
    con: duckdb.DuckDBPyConnection, folder: Path, progress: Callable[[int], Any] | None
) -> None:
    folder.mkdir(parents=True)
    index = tantivy.Index(build_schema(), path=str(folder))
    writer = index.writer(heap_size=1_000_000_000, num_threads=2)
    reader = con.sql(tantivy_json_sql()).to_arrow_reader(BATCH_ROWS)
    for batch in reader:
        docs = batch.column(0).to_pylist()
        for doc in docs:
            writer.add_json(doc)
        if progress is not None:
            progress(len(docs))
    writer.commit()
    writer.wait_merging_threads()
    index.reload()
    np.save(folder.parent / ADDRESSES_FILE, document_addresses(index.searcher()))
