"""Every record of an embedded cohort, in chunks, read from the generation's parquet.

An export must not hold a million documents at once, nor ask tantivy for them one page
at a time (reading stored documents is the slow part of the embedded index). So the
records come from the generation's `corpus.parquet`, which lists every series in row
order: a cohort's rows are ascending, so each row group is read at most once and only
the selected rows of it are kept. Series only live sources answered come from the
generation's live part.

Memory is flat in the cohort's size (`bench/exports.py`, `tests/export/
test_memory.py`): what is held at once is one batch of `READ_ROWS` decoded rows, one
chunk of records and its text, whether the cohort has 10k series or 1M. So no step may
copy a whole batch's selection at once, and every generator drops its chunk before
asking for the next (see `hub/export/writers.pieces`). Only the cohort's row numbers
(8 bytes a series) grow with it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from hub.index.embedded.build import CORPUS_FILE
from hub.index.embedded.columns import Rows
from hub.index.embedded.composite import CompositeColumns
from hub.index.embedded.generation import Generation
from hub.index.embedded.tantivy_query import FETCHED_AT
from hub.index.protocol import Record, record_of

READ_ROWS = 2_000
"""Rows decoded from parquet at a time (row groups hold ~50,000): 10,000 cost ~45 MB
more peak RSS on the IDC corpus, for ~10% less CPU."""


def corpus_file(gen: Generation) -> Path | None:
    """The generation's parquet corpus, or None if it was built before exports existed."""
    path = gen.files.folder / CORPUS_FILE
    return path if path.is_file() else None


def parquet_chunks(
    gen: Generation,
    rows: Rows,
    live: pa.Table,
    chunk_rows: int,
    columns: list[str] | None,
) -> Iterator[list[Record]]:
    """The records of `rows` (ascending) of `gen`, whose corpus file exists; `live` is
    the index's live table, for the download locations live sources gave."""
    split = int(np.searchsorted(rows, gen.base_columns.rows))
    extra = live_locations(live)
    composite = gen.columns if isinstance(gen.columns, CompositeColumns) else None
    path = corpus_file(gen)
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
            records = [record_of({**d, "locations": []}) for d in docs]
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


def live_locations(table: pa.Table) -> dict[str, list[dict[str, str]]]:
    """Download locations live sources gave, by series: the live tier is small by design
    (what live sources answered recently), so this map is too."""
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
