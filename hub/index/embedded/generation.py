"""One built index generation: its tantivy index, numpy columns and metadata.

A generation's files are never written to after the build. A `Generation` value is
what a query reads; attaching live answers produces a new value with an aligned live
part (an in-memory tantivy index and numpy columns) beside the harvested one.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import tantivy

from hub.index.common import EPOCH
from hub.index.embedded.columns import ColumnStore
from hub.index.embedded.composite import CompositeColumns
from hub.index.embedded.memo import once
from hub.index.embedded.tantivy_query import FETCHED_AT, STORED_ONLY, QueryCompiler
from schema.record import FIELDS


@dataclass(frozen=True)
class TantivyPart:
    """One tantivy index a cohort reads: the harvested one on disk, or the small in-memory
    one holding series only live sources answered."""

    index: tantivy.Index
    searcher: tantivy.Searcher
    compiler: QueryCompiler


class LivePart:
    """Series only live sources answered, rows `first_row`.. in `table` (canonical columns
    plus `row`). Counts, facets, histograms and paging read its numpy columns; the
    tantivy index is built on first need (free text), which most questions never have."""

    def __init__(self, table: pa.Table, build: Callable[[pa.Table], TantivyPart]) -> None:
        self.table = table
        self.first_row = int(table["row"][0].as_py()) if table.num_rows else 0
        self._build = build
        self._part: TantivyPart | None = None
        self._lock = threading.Lock()

    def tantivy(self) -> TantivyPart:
        with self._lock:
            if self._part is None:
                self._part = self._build(self.table)
            return self._part

    def documents(self, rows: list[int]) -> list[dict[str, Any]]:
        """Documents of `rows` in the shape `stored_documents` gives, straight from Arrow."""
        taken = self.table.take(pa.array([r - self.first_row for r in rows], pa.int64()))
        docs = []
        for record in taken.to_pylist():
            doc: dict[str, Any] = {name: record.get(name) for name in FIELDS}
            doc["row"], doc["sources"] = record["row"], record["sources"]
            for name in STORED_ONLY:
                doc[name] = record.get(name)
            if doc["study_date"] is not None:
                doc["study_date"] = doc["study_date"].isoformat()
            if doc["fetched_at"] is not None:
                doc["fetched_at"] = doc["fetched_at"].astimezone(dt.UTC).strftime(FETCHED_AT)
            docs.append(doc)
        return docs


@dataclass
class GenerationFiles:
    """What all values of one generation share (never written to after the build)."""

    folder: Path
    base_columns: ColumnStore
    _row_of_series: npt.NDArray[np.int64] | None = None

    @once
    def addresses(self) -> npt.NDArray[np.int64] | None:
        """The stored documents' addresses (`document_addresses`); None for generations
        built before they were written."""
        path = self.folder / ADDRESSES_FILE
        return np.asarray(np.load(path, mmap_mode="r")) if path.exists() else None

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
    main: TantivyPart
    columns: ColumnStore | CompositeColumns
    meta: dict[str, Any]
    live: LivePart | None = None
    live_version: int = 0

    def text_parts(self) -> list[TantivyPart]:
        """The tantivy indexes a text question reads (the live one built on first need)."""
        return [self.main] if self.live is None else [self.main, self.live.tantivy()]

    @property
    def index(self) -> tantivy.Index:
        return self.main.index

    @property
    def searcher(self) -> tantivy.Searcher:
        return self.main.searcher

    @property
    def compiler(self) -> QueryCompiler:
        return self.main.compiler

    @property
    def base_columns(self) -> ColumnStore:
        return self.files.base_columns


def open_generation(folder: Path) -> Generation:
    index = tantivy.Index.open(str(folder / "tantivy"))
    columns = ColumnStore.open(folder / "columns")
    return Generation(
        name=folder.name,
        files=GenerationFiles(folder, columns),
        main=TantivyPart(index, index.searcher(), QueryCompiler(index.schema)),
        columns=columns,
        meta=json.loads((folder / "generation.json").read_text()),
    )


ADDRESSES_FILE = "addresses.npy"


def document_addresses(searcher: tantivy.Searcher) -> npt.NDArray[np.int64]:
    """Where each row's stored document is, `segment << 32 | doc` by row, written with the
    generation: a page of documents is then read by address, without the term-set search
    on `row` that finding them costs (1.6 ms of a 4 ms page over IDC)."""
    hits = searcher.search(tantivy.Query.all_query(), limit=max(1, searcher.num_docs)).hits
    found = [address for _, address in hits]
    rows = np.asarray(searcher.fast_field_values("row", found), dtype=np.int64)
    addresses = np.full(searcher.num_docs, -1, dtype=np.int64)
    addresses[rows] = [(a.segment_ord << 32) | a.doc for a in found]
    return addresses


def stored_documents(
    index: tantivy.Index,
    searcher: tantivy.Searcher,
    rows: list[int],
    addresses: npt.NDArray[np.int64] | None = None,
) -> list[dict[str, Any]]:
    """Canonical documents of `rows`, in that order; by address when the generation has
    them (`document_addresses`), else found by a search on `row`."""
    if not rows:
        return []
    if addresses is not None:
        where = addresses[rows]
        found = [tantivy.DocAddress(int(a >> 32), int(a & 0xFFFFFFFF)) for a in where]
    else:
        query = tantivy.Query.term_set_query(index.schema, "row", rows)
        found = [address for _, address in searcher.search(query, limit=len(rows)).hits]
    by_row = {}
    for address in found:
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
