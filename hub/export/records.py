"""Every record of a cohort, in chunks, whatever the cohort's size.

An export must not hold a million documents at once. The cohort streams them itself
(`CohortView.record_chunks`): each backend in its fastest way (the embedded index reads
its parquet corpus, see `hub/index/embedded/records.py`), or by cursor paging through
`series`. Memory is flat in the cohort's size (`bench/exports.py`,
`tests/export/test_memory.py`): every generator drops its chunk before asking for the
next (see `writers.pieces`).

A record is a dict of the canonical columns (`schema.record.RECORD_COLUMNS`, dates and
times as ISO strings) plus `locations`: where each repository holding the series serves
it (`[{"source": ..., "url": ...}]`), which the download manifests need.
"""

from __future__ import annotations

from collections.abc import Iterator

from hub.index.protocol import CHUNK_ROWS, CohortView, Record
from schema.record import RECORD_COLUMNS

__all__ = ["CHUNK_ROWS", "MANIFEST_COLUMNS", "RECORD_FILE_COLUMNS", "Record", "record_chunks"]

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
    `columns` (with `row`) narrows what a backend's fast route reads; records may then
    lack the other keys (the paging route always gives whole records)."""
    yield from view.record_chunks(limit, chunk_rows, columns)
