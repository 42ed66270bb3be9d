"""Every record of a cohort, in chunks, whatever the cohort's size.

An export must not hold a million documents at once, nor ask tantivy for them one page
at a time (reading stored documents is the slow part of the embedded index). So for the
embedded backend the records come from the generation's `corpus.parquet`, which lists
every series in row order: a cohort's rows are ascending, so each row group is read at
most once and only the selected rows of it are kept. Series only live sources answered
come from the generation's live part. Any other `CohortView` (the Elasticsearch backend)
is paged through with `series(first=1000, after=cursor)`.

Memory is flat in the cohort's size (`bench/exports.py`, `tests/export/
test_memory.py`): what is held at once is one batch of `READ_ROWS` decoded rows, one
chunk of `CHUNK_ROWS` records and its text, whether the cohort has 10k series or 1M.
So no step may copy a whole batch's selection at once, and every generator drops its
chunk before asking for the next (see `writers.pieces`). Only the cohort's row numbers
(8 bytes a series) grow with it.

A record is a dict of the canonical columns (`schema.record.RECORD_COLUMNS`, dates and
times as ISO strings) plus `locations`: where each repository holding the series serves
it (`[{"source": ..., "url": ...}]`), which the download manifests need.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from hub.index.base import MAX_PAGE, CohortView
from hub.index.build import CORPUS_FILE
from hub.index.composite import CompositeColumns
from hub.index.embedded import EmbeddedCohort
from hub.index.tantivy_query import FETCHED_AT
from schema.record import RECORD_COLUMNS

Record = dict[str, Any]
CHUNK_ROWS = 1_000
"""Records per chunk: ~3 MB of Python objects (~2.7 KB a record) and ~1 MB of NDJSON.
Larger chunks are no faster; they only raise the peak once a cohort is dense enough
to fill them (a chunk never spans two decoded batches, so it is at most `READ_ROWS`)."""
READ_ROWS = 2_000
"""Rows decoded from parquet at a time (row groups hold ~50,000): 10,000 cost ~45 MB
more peak RSS on the IDC corpus, for ~10% less CPU."""
RECORD_FILE_COLUMNS = ["row", *RECORD_COLUMNS]
"""What CSV and NDJSON read: the canonical columns, in their order, without `locations`."""
MANIFEST_COLUMNS = ["row", "source", "sources", "patient_id", "study_uid", "series_uid"]
MANIFEST_COLUMNS += ["download_url", "locations"]
"""What download manifests read: a fraction of each row."""


def record_chunks(
    view: CohortView,
    limit: int | None = None,
    chunk_rows: int = CHUNK_ROWS,
    columns: list[str] | None = None,
) -> Iterator[list[Record]]:
    """The cohort's records in browse order, `chunk_rows` at a time, at most `limit`.
    `columns` (with `row`) narrows what the parquet route reads; records may then lack
    the other keys (the paging route always gives whole records)."""
    if isinstance(view, EmbeddedCohort) and corpus_file(view) is not None:
        chunks = _embedded_chunks(view, limit, chunk_rows, columns)
    else:
        chunks = _paged_chunks(view, limit)
    yield from chunks


def corpus_file(view: EmbeddedCohort) -> Path | None:
    """The generation's parquet corpus, or None if it was built before exports existed."""
    path = view.gen.files.folder / CORPUS_FILE
    return path if path.is_file() else None


def _paged_chunks(view: CohortView, limit: int | None) -> Iterator[list[Record]]:
    """The generic route: cursor paging through any backend's `series`."""
    left = limit if limit is not None else -1
    after: str | None = None
    while left != 0:
        first = MAX_PAGE if left < 0 else min(MAX_PAGE, left)
        page = view.series(first, after, [])
        records = [_from_document(doc) for doc in page.nodes]
        more, after = page.has_next and bool(records), page.end_cursor
        del page  # one page at a time, as on the parquet route
        if records:
            left = left - len(records) if left > 0 else left
            yield records
        del records
        if not more:
            return


def _from_document(doc: dict[str, Any]) -> Record:
    record = {name: doc.get(name) for name in RECORD_COLUMNS}
    record["sources"] = list(doc.get("sources") or ([doc["source"]] if doc.get("source") else []))
    locations = doc.get("locations")
    if locations is None and record["download_url"] is not None:
        locations = [{"source": record["source"], "url": record["download_url"]}]
    record["locations"] = locations or []
    return record


def _embedded_chunks(
    view: EmbeddedCohort, limit: int | None, chunk_rows: int, columns: list[str] | None
) -> Iterator[list[Record]]:
    gen = view.gen
    rows = view.rows if limit is None else view.rows[:limit]
    split = int(np.searchsorted(rows, gen.base_columns.rows))
    extra = _live_locations(view)
    composite = gen.columns if isinstance(gen.columns, CompositeColumns) else None
    path = corpus_file(view)
    assert path is not None
    parquet = pq.ParquetFile(path)
    try:
        for part, selected in _selected_rows(parquet, rows[:split], columns, chunk_rows):
            records = _from_table(part)
            del part  # the Arrow copy goes before the next piece is taken
            if composite is not None:  # live sources also holding harvested series
                names = composite.main.source_names
                bits = composite.main.codes("source.bits")[selected]
                for record, row_bits in zip(records, bits, strict=True):
                    record["sources"] = _names(int(row_bits), names)
            if extra and (columns is None or "locations" in columns):
                _add_locations(records, extra)
            yield records
            del records  # not held while the next chunk is made
    finally:
        parquet.close()
    if gen.live is not None:
        live_rows = rows[split:]
        for start in range(0, len(live_rows), chunk_rows):
            docs = gen.live.documents([int(r) for r in live_rows[start : start + chunk_rows]])
            records = [_from_document({**d, "locations": []}) for d in docs]
            _add_locations(records, extra)
            yield records
            del records


def _selected_rows(
    parquet: pq.ParquetFile, rows: npt.NDArray[np.int64], columns: list[str] | None, most: int
) -> Iterator[tuple[pa.Table, npt.NDArray[np.int64]]]:
    """The selected rows, at most `most` at a time, with their row numbers.

    Memory must not depend on the cohort: each row group that has selected rows is
    decoded `READ_ROWS` at a time, and only `most` of a batch's selected rows are copied
    out of it at once (a slice, no copy, when they are consecutive, as in a large
    cohort), so a dense cohort holds no more than a sparse one. Row groups without
    selected rows are never read. Arrow's pool is asked to give freed pages back after
    each row group, whichever allocator it uses."""
    meta = parquet.metadata
    sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    bounds = np.searchsorted(rows, starts)
    pool = pa.default_memory_pool()
    for group in range(meta.num_row_groups):
        selected = rows[bounds[group] : bounds[group + 1]]
        if len(selected) == 0:
            continue
        low = int(starts[group])
        batches = parquet.iter_batches(
            batch_size=READ_ROWS, row_groups=[group], columns=columns, use_threads=False
        )
        for batch in batches:
            high = low + batch.num_rows
            first, last = (int(i) for i in np.searchsorted(selected, [low, high]))
            table = pa.Table.from_batches([batch])
            for at in range(first, last, most):
                mine = selected[at : min(at + most, last)]
                offset = int(mine[0]) - low
                if int(mine[-1]) - int(mine[0]) + 1 == len(mine):
                    yield table.slice(offset, len(mine)), mine
                else:
                    yield table.take(pa.array(mine - low, pa.int64())), mine
            del table, batch
            low = high
        pool.release_unused()


def _from_table(table: pa.Table) -> list[Record]:
    """Arrow rows as records, with dates and times as the documents show them (built
    column by column: twice as fast as `Table.to_pylist`)."""
    if "study_date" in table.column_names:
        date = pc.cast(table["study_date"], pa.string())
        table = table.set_column(table.schema.get_field_index("study_date"), "study_date", date)
    if "fetched_at" in table.column_names:
        seconds = pc.cast(table["fetched_at"], pa.timestamp("s", tz="UTC"), safe=False)
        fetched = pc.strftime(seconds, format=FETCHED_AT)
        table = table.set_column(table.schema.get_field_index("fetched_at"), "fetched_at", fetched)
    table = table.drop_columns(["row"])
    names = table.column_names
    values = [column.to_pylist() for column in table.columns]
    return [dict(zip(names, row, strict=True)) for row in zip(*values, strict=True)]


def _names(bits: int, names: list[str]) -> list[str]:
    return [name for slot, name in enumerate(names) if bits & (1 << slot)]


def _live_locations(view: EmbeddedCohort) -> dict[str, list[dict[str, str]]]:
    """Download locations live sources gave, by series: the live tier is small by design
    (what live sources answered recently), so this map is too."""
    table = view.owner.live.table
    if table.num_rows == 0:
        return {}
    table = table.select(["series_uid", "source", "download_url"]).filter(
        pc.is_valid(table["download_url"])
    )
    found: dict[str, list[dict[str, str]]] = {}
    for uid, source, url in zip(*(table[c].to_pylist() for c in table.column_names), strict=True):
        found.setdefault(uid, []).append({"source": source, "url": url})
    return found


def _add_locations(records: list[Record], extra: dict[str, list[dict[str, str]]]) -> None:
    for record in records:
        more = extra.get(record["series_uid"])
        if more:
            known = {loc["source"] for loc in record["locations"]}
            record["locations"] += [loc for loc in more if loc["source"] not in known]
