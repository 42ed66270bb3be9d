"""One built index generation: its tantivy index, numpy columns and metadata.

A `Generation` value is what a query reads; attaching live records produces a new
value (new searcher, new columns) while the files, the single tantivy writer and
the caches that do not change stay in the shared `GenerationFiles`.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import tantivy

from hub.index.columns import ColumnStore
from hub.index.composite import CompositeColumns
from hub.index.tantivy_query import EPOCH, STORED_ONLY, QueryCompiler
from schema.record import FIELDS


@dataclass
class GenerationFiles:
    """What all values of one generation share."""

    folder: Path
    index: tantivy.Index
    base_columns: ColumnStore
    write_lock: threading.Lock = field(default_factory=threading.Lock)
    _writer: tantivy.IndexWriter | None = None
    _row_of_series: npt.NDArray[np.int64] | None = None

    def writer(self) -> tantivy.IndexWriter:
        """The one writer of this generation, for live documents (small heap, one thread)."""
        if self._writer is None:
            self._writer = self.index.writer(heap_size=50_000_000, num_threads=1)
        return self._writer

    def release_writer(self) -> None:
        """Let go of the writer (and its lock file), e.g. when the hub shuts down."""
        with self.write_lock:
            writer, self._writer = self._writer, None
        if writer is not None:
            writer.wait_merging_threads()

    def row_of_series_code(self) -> npt.NDArray[np.int64]:
        """Harvested row of each series_uid dictionary code (uids are unique per row)."""
        if self._row_of_series is None:
            codes = np.asarray(self.base_columns.codes("series_uid"), dtype=np.int64)
            rows = np.empty(len(codes), dtype=np.int64)
            rows[codes] = np.arange(len(codes))
            self._row_of_series = rows
        return self._row_of_series


@dataclass(frozen=True)
class Generation:
    name: str
    files: GenerationFiles
    searcher: tantivy.Searcher
    columns: ColumnStore | CompositeColumns
    compiler: QueryCompiler
    meta: dict[str, Any]
    overlaid_rows: tuple[int, ...] = ()
    live_version: int = 0

    @property
    def index(self) -> tantivy.Index:
        return self.files.index

    @property
    def base_columns(self) -> ColumnStore:
        return self.files.base_columns

    @property
    def write_lock(self) -> threading.Lock:
        return self.files.write_lock

    def writer(self) -> tantivy.IndexWriter:
        return self.files.writer()

    def row_of_series_code(self) -> npt.NDArray[np.int64]:
        return self.files.row_of_series_code()


def open_generation(folder: Path) -> Generation:
    index = tantivy.Index.open(str(folder / "tantivy"))
    columns = ColumnStore.open(folder / "columns")
    return Generation(
        name=folder.name,
        files=GenerationFiles(folder, index, columns),
        searcher=index.searcher(),
        columns=columns,
        compiler=QueryCompiler(index.schema),
        meta=json.loads((folder / "generation.json").read_text()),
    )


def stored_documents(
    index: tantivy.Index, searcher: tantivy.Searcher, rows: list[int]
) -> list[dict[str, Any]]:
    """Canonical documents of `rows`, in that order."""
    if not rows:
        return []
    query = tantivy.Query.term_set_query(index.schema, "row", rows)
    hits = searcher.search(query, limit=len(rows), count=False).hits
    by_row = {}
    for _, address in hits:
        doc = canonical(searcher.doc(address).to_dict())
        by_row[doc["row"]] = doc
    return [by_row[r] for r in rows if r in by_row]


def canonical(stored: dict[str, list[Any]]) -> dict[str, Any]:
    doc: dict[str, Any] = {name: None for name in FIELDS}
    for name, values in stored.items():
        doc[name] = values if name == "sources" else (values[0] if values else None)
    if doc.get("study_date") is not None:
        doc["study_date"] = (EPOCH + dt.timedelta(days=int(doc["study_date"]))).isoformat()
    for name in STORED_ONLY:
        doc.setdefault(name, None)
    return doc
