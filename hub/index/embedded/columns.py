"""Columnar side of the embedded index: exact distinct counts, paging and sort keys.

tantivy ranks, facets and stores documents, but its distinct count is a
HyperLogLog estimate (164,071 studies where IDC has 168,507), and pulling every hit
out to count exactly costs ~130 ms. So each index generation also keeps its fields
as dictionary-encoded numpy arrays, aligned by `row`; a filter evaluates to a row
mask in a few milliseconds, from which patients and studies are counted exactly.
Keyword dictionaries are sorted, so codes order like the strings they stand for.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from hub.index.embedded.tantivy_query import to_index_value
from schema.filters import And, Compare, In, IsMissing, Node, Or, Search, Value
from schema.record import FIELDS, FieldKind

Mask = npt.NDArray[np.bool_]
Rows = npt.NDArray[np.int64]
"""Selected row numbers, ascending: taking 20% of a million codes by row number is ~6x
faster than by boolean mask, so a cohort turns its mask into rows once."""
MISSING = -1
SearchRows = Callable[[Search], npt.NDArray[np.int64]]
"""Rows a text node matches (the numpy side has no text; tantivy answers it)."""
MAX_SPLIT_CODES = 1_000
"""Past this many values split over several runs, distinct counts mark a table instead."""
ColumnAt = Callable[[str], np.ndarray]
"""A column's values at the rows being evaluated."""
KEYWORD_COLUMNS = [
    n for n, s in FIELDS.items() if s.kind in (FieldKind.KEYWORD, FieldKind.TEXT) and n != "source"
]
NUMERIC_COLUMNS = [n for n, s in FIELDS.items() if s.kind in (FieldKind.INTEGER, FieldKind.DATE)]


def encode_keyword(values: pa.Array | pa.ChunkedArray) -> tuple[npt.NDArray[np.int32], pa.Array]:
    """Codes into a sorted dictionary (so codes order like strings); nulls become -1."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    encoded = pc.dictionary_encode(values)
    order = np.asarray(pc.sort_indices(encoded.dictionary), dtype=np.int64)
    rank = np.empty(len(order), dtype=np.int32)
    rank[order] = np.arange(len(order), dtype=np.int32)
    codes = np.full(len(values), MISSING, dtype=np.int32)
    valid = np.asarray(encoded.indices.is_valid())
    if len(order):
        codes[valid] = rank[np.asarray(encoded.indices.drop_null(), dtype=np.int64)]
    return codes, encoded.dictionary.take(pa.array(order, type=pa.int64()))


def encode_columns(table: pa.Table, sources: list[str]) -> Encoded:
    """Arrays, sorted dictionaries and metadata for a table of canonical records in row
    order (the harvested corpus, or the few live series: one code path for both)."""
    arrays: dict[str, np.ndarray] = {}
    dictionaries: dict[str, pa.Array] = {}
    patient_key = pc.binary_join_element_wise(table["collection"], table["patient_id"], "\x1f")
    for name in KEYWORD_COLUMNS:
        arrays[name], dictionaries[name] = encode_keyword(table.column(name))
    arrays["patient_key"], dictionaries["patient_key"] = encode_keyword(patient_key)
    for name in NUMERIC_COLUMNS:
        column = table.column(name).combine_chunks()
        if FIELDS[name].kind is FieldKind.DATE:  # date32 is days since 1970-01-01
            column = column.cast(pa.int32())
        arrays[name + ".valid"] = np.asarray(column.is_valid())
        arrays[name] = column.fill_null(0).to_numpy().astype(np.int64)
    arrays["source.bits"] = source_bits(table.column("sources"), sources)
    meta = {
        "rows": table.num_rows,
        "sources": sources,
        "cardinality": {n: len(d) for n, d in dictionaries.items()},
    }
    return Encoded(arrays, dictionaries, meta)


def source_bits(lists: pa.ChunkedArray | pa.Array, sources: list[str]) -> npt.NDArray[np.uint64]:
    """One bit per source slot, set where the row's `sources` list names that source."""
    if isinstance(lists, pa.ChunkedArray):
        lists = lists.combine_chunks()
    bits = np.zeros(len(lists), dtype=np.uint64)
    flat = lists.flatten().to_numpy(zero_copy_only=False)
    owner = np.repeat(np.arange(len(lists)), np.diff(lists.offsets.to_numpy()))
    for slot, name in enumerate(sources):
        bits[owner[flat == name]] |= np.uint64(1 << slot)
    return bits


@dataclass
class Encoded:
    arrays: dict[str, np.ndarray]
    dictionaries: dict[str, pa.Array]
    meta: dict[str, Any]

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True)
        for name, array in self.arrays.items():
            np.save(folder / f"{name}.npy", array)
        for name, dictionary in self.dictionaries.items():
            with (
                pa.OSFile(str(folder / f"{name}.dict.arrow"), "wb") as sink,
                pa.ipc.new_file(sink, pa.schema([("value", pa.string())])) as writer,
            ):
                writer.write_table(pa.table({"value": dictionary.cast(pa.string())}))
        (folder / "columns.json").write_text(json.dumps(self.meta))


class ColumnStore:
    """Numpy columns of one index generation: memory-mapped from `<gen>/columns/` (`open`),
    or in memory for the small live tier."""

    def __init__(
        self,
        arrays: Mapping[str, np.ndarray],
        dictionaries: Callable[[str], pa.Array],
        meta: dict[str, Any],
    ) -> None:
        self._arrays = dict(arrays)
        self._load_dictionary = dictionaries
        self.meta = meta
        self.rows: int = meta["rows"]
        self.source_names: list[str] = meta["sources"]

    @classmethod
    def open(cls, folder: Path) -> ColumnStore:
        def load(name: str) -> pa.Array:
            source = pa.memory_map(str(folder / f"{name}.dict.arrow"))  # stays mapped
            return pa.ipc.open_file(source).read_all().column(0).combine_chunks()

        # Plain views of the mappings: indexing a `np.memmap` costs a Python call each time.
        arrays = {p.stem: np.asarray(np.load(p, mmap_mode="r")) for p in folder.glob("*.npy")}
        return cls(arrays, load, json.loads((folder / "columns.json").read_text()))

    @classmethod
    def from_encoded(cls, encoded: Encoded) -> ColumnStore:
        return cls(encoded.arrays, encoded.dictionaries.__getitem__, encoded.meta)

    def with_sources(self, bits: np.ndarray, names: list[str]) -> ColumnStore:
        """The same columns with other source memberships (live copies of harvested series)."""
        arrays = {**self._arrays, "source.bits": bits}
        return ColumnStore(arrays, self.dictionary, {**self.meta, "sources": names})

    def codes(self, name: str) -> np.ndarray:
        return self._arrays[name]

    def cardinality(self, name: str) -> int:
        return int(self.meta["cardinality"][name])

    def dictionary(self, name: str) -> pa.Array:
        cache = self.__dict__.setdefault("_dicts", {})
        if name not in cache:
            cache[name] = self._load_dictionary(name)
        return cache[name]

    def code_of(self, name: str, values: tuple[Value, ...]) -> npt.NDArray[np.int64]:
        codes = self.lookup(name, [str(v) for v in values])
        return np.asarray(codes[codes != MISSING], dtype=np.int64)

    def lookup(self, name: str, values: list[str]) -> npt.NDArray[np.int64]:
        """Codes of `values` in the sorted dictionary of `name` (-1 where absent), by binary
        search: hashing a million-entry dictionary again for each lookup costs ~100 ms."""
        cache = self.__dict__.setdefault("_sorted", {})
        if name not in cache:
            cache[name] = np.asarray(self.dictionary(name).to_pylist(), dtype=object)
        ordered = cache[name]
        wanted = np.asarray(values, dtype=object).reshape(-1)
        if not len(ordered) or not len(wanted):
            return np.full(len(wanted), MISSING, dtype=np.int64)
        pos = np.minimum(np.searchsorted(ordered, wanted), len(ordered) - 1)
        return np.where(ordered[pos] == wanted, pos, MISSING).astype(np.int64)

    # --- filter evaluation -------------------------------------------------------

    def mask(self, node: Node, search_rows: SearchRows) -> Mask:
        """Which rows a filter selects, over the whole store."""
        return self._mask_at(node, search_rows, None)

    def select(self, node: Node, search_rows: SearchRows) -> Rows:
        """The rows a filter selects, ascending. An AND evaluates its most selective
        condition over every row and each further one only at the rows still in: most
        cohorts narrow fast, so most conditions look at a small part of each column."""
        return self._select(node, search_rows, None)

    def _select(self, node: Node, search_rows: SearchRows, within: Rows | None) -> Rows:
        if isinstance(node, And):
            rows = within
            for child in sorted(node.children, key=self._estimated_share):
                rows = self._select(child, search_rows, rows)
                if not len(rows):
                    break
            return rows if rows is not None else np.arange(self.rows, dtype=np.int64)
        hit = self._mask_at(node, search_rows, within)
        return np.flatnonzero(hit) if within is None else within[hit]

    def _estimated_share(self, node: Node) -> float:
        """The share of rows a condition keeps, roughly: exact for IN on a keyword (from
        the column's whole-store value counts), a guess otherwise. Only orders work."""
        match node:
            case In("source", _, _) | Compare(_, "source", _):
                return 1.0
            case In(field, values, False) if self._kind(field) is FieldKind.KEYWORD:
                counts = self._code_counts(field)
                codes = self.code_of(field, values)
                return float(counts[codes].sum()) / max(1, self.rows)
            case Compare("=", field, value) if self._kind(field) is FieldKind.KEYWORD:
                return self._estimated_share(In(field, (value,), False))
            case Search():
                return 2.0  # last: its rows are remembered, but scattering them costs
        return 1.0

    def _code_counts(self, field: str) -> npt.NDArray[np.int64]:
        return self._counts_with_missing(field)[1:]

    def _mask_at(self, node: Node, search_rows: SearchRows, within: Rows | None) -> Mask:
        """A filter's answer at `within` (every row when None), as a mask aligned with it."""
        size = self.rows if within is None else len(within)

        def column(name: str) -> np.ndarray:
            values = np.asarray(self.codes(name))
            return values if within is None else values[within]

        match node:
            case And(children):
                out = np.ones(size, dtype=bool)
                for c in children:
                    out &= self._mask_at(c, search_rows, within)
                return out
            case Or(children):
                out = np.zeros(size, dtype=bool)
                for c in children:
                    out |= self._mask_at(c, search_rows, within)
                return out
            case IsMissing(field, missing):
                present = self._present(field, column)
                return ~present if missing else present
            case In(field, values, negated):
                hit = self._any_of(field, values, column)
                return ~hit if negated else hit
            case Compare(op, field, value):
                return self._compare(op, field, value, column)
            case Search():
                out = np.zeros(self.rows, dtype=bool)
                out[search_rows(node)] = True
                return out if within is None else out[within]
        raise TypeError(node)

    def _kind(self, field: str) -> FieldKind:
        return FIELDS[field].kind

    def _present(self, field: str, column: ColumnAt) -> Mask:
        if field == "source":
            return np.ones(len(column("source.bits")), dtype=bool)
        if self._kind(field) in (FieldKind.INTEGER, FieldKind.DATE):
            return np.asarray(column(field + ".valid"), dtype=bool)
        return np.asarray(column(field) != MISSING)

    def _any_of(self, field: str, values: tuple[Value, ...], column: ColumnAt) -> Mask:
        if field == "source":
            bits = np.uint64(0)
            for v in values:
                if v in self.source_names:
                    bits |= np.uint64(1 << self.source_names.index(str(v)))
            return np.asarray((column("source.bits") & bits) != 0)
        if self._kind(field) in (FieldKind.INTEGER, FieldKind.DATE):
            vals = [to_index_value(field, v) for v in values]
            valid = np.asarray(column(field + ".valid"), dtype=bool)
            return valid & _equals_any(column(field), vals)
        return _equals_any(column(field), self.code_of(field, values))

    def _compare(self, op: str, field: str, value: Value, column: ColumnAt) -> Mask:
        if op in ("=", "!="):
            hit = self._any_of(field, (value,), column)
            return ~hit if op == "!=" else hit
        v = to_index_value(field, value)
        valid = np.asarray(column(field + ".valid"), dtype=bool)
        ops = {">": np.greater, ">=": np.greater_equal, "<": np.less, "<=": np.less_equal}
        return np.asarray(valid & ops[op](column(field), v), dtype=bool)

    def sort_values(self, field: str, rows: np.ndarray) -> tuple[np.ndarray, Mask]:
        """Comparable int64 values of a field at `rows`, and which of them are present."""
        values = np.asarray(self.codes(field))[rows].astype(np.int64)
        if FIELDS[field].kind in (FieldKind.INTEGER, FieldKind.DATE):
            return values, np.asarray(self.codes(field + ".valid"), dtype=bool)[rows]
        return values, values != MISSING

    def value_range(self, field: str) -> tuple[int, int]:
        """Smallest and largest value of a numeric field over the whole generation."""
        cache = self.__dict__.setdefault("_ranges", {})
        if field not in cache:
            values = np.asarray(self.codes(field))[np.asarray(self.codes(field + ".valid"), bool)]
            cache[field] = (int(values.min()), int(values.max())) if len(values) else (0, 0)
        return cache[field]  # type: ignore[no-any-return]

    # --- counting ----------------------------------------------------------------

    def distinct(self, name: str, rows: Rows) -> int:
        """Exact number of distinct codes of column `name` among `rows` (ascending).

        Rows are in browse order (collection, patient, study), so a patient's or a
        study's rows are next to each other: among any ascending rows, each value is one
        run, and counting where the value changes counts values, 4x faster than marking
        them in a table. Values split over several runs (a study filed under two
        collections) are the exception, counted apart."""
        split = self._split_codes(name)
        values = self.codes(name)[rows]
        if split is None or not len(values):
            seen = np.zeros(self.cardinality(name) + 1, dtype=bool)
            seen[values] = True
            return int(seen[:-1].sum())
        starts = np.empty(len(values), dtype=bool)
        starts[0] = True
        np.not_equal(values[1:], values[:-1], out=starts[1:])
        firsts = values[starts]
        firsts = firsts[firsts != MISSING]
        if not len(split):
            return len(firsts)
        again = np.isin(firsts, split)
        return int(len(firsts) - np.count_nonzero(again) + len(np.unique(firsts[again])))

    def _split_codes(self, name: str) -> npt.NDArray[np.int64] | None:
        """Codes whose rows are not one run in the whole store (none, for IDC patients;
        one study for IDC studies); None when there are too many for runs to pay."""
        cache = self.__dict__.setdefault("_split", {})
        if name not in cache:
            codes = np.asarray(self.codes(name))
            starts = np.ones(len(codes), dtype=bool)
            starts[1:] = codes[1:] != codes[:-1]
            found, runs = np.unique(codes[starts], return_counts=True)
            split = found[(runs > 1) & (found != MISSING)].astype(np.int64)
            cache[name] = split if len(split) <= MAX_SPLIT_CODES else None
        return cache[name]  # type: ignore[no-any-return]

    def value_counts(self, name: str, rows: Rows) -> dict[str, int]:
        """Rows per value of a keyword column among `rows` (a facet, from numpy)."""
        shifted = np.asarray(self.codes(name))[rows] + 1  # MISSING (-1) lands in bin 0
        counts = np.bincount(shifted, minlength=self.cardinality(name) + 1)[1:]
        present = np.flatnonzero(counts)
        values = self.dictionary(name).take(pa.array(present, type=pa.int64())).to_pylist()
        return {str(v): int(c) for v, c in zip(values, counts[present], strict=True)}

    def top_values(
        self, name: str, rows: Rows, size: int, outside: Rows | None = None
    ) -> tuple[list[tuple[str, int]], int]:
        """The `size` commonest values among `rows`, most rows first and ties by value (as
        `value_counts` sorted would give), and the rows holding any value. Only the kept
        values become Python objects: a facet over disease or manufacturer has hundreds.
        `outside`, the rows not selected, is counted instead when it is the shorter."""
        if outside is not None and len(outside) < len(rows):
            shifted = np.asarray(self.codes(name))[outside] + 1  # MISSING lands in bin 0
            left_out = np.bincount(shifted, minlength=self.cardinality(name) + 1)
            counts = (self._counts_with_missing(name) - left_out)[1:]
        else:
            shifted = np.asarray(self.codes(name))[rows] + 1
            counts = np.bincount(shifted, minlength=self.cardinality(name) + 1)[1:]
        present = np.flatnonzero(counts)
        kept = present[np.lexsort((present, -counts[present]))][:size]  # codes sort as values
        values = self.dictionary(name).take(pa.array(kept, type=pa.int64())).to_pylist()
        top = [(str(v), int(c)) for v, c in zip(values, counts[kept], strict=True)]
        return top, int(counts.sum())

    def _counts_with_missing(self, name: str) -> npt.NDArray[np.int64]:
        """Rows per code over the whole store, missing values in bin 0."""
        cache = self.__dict__.setdefault("_with_missing", {})
        if name not in cache:
            shifted = np.asarray(self.codes(name)) + 1
            cache[name] = np.bincount(shifted, minlength=self.cardinality(name) + 1)
        return cache[name]  # type: ignore[no-any-return]

    def histogram(self, field: str, rows: Rows, interval: float) -> dict[int, int]:
        """Rows per bucket of a numeric column among `rows`. Bucket i holds values in
        [i * interval, (i + 1) * interval), as Elasticsearch and tantivy bucket them;
        dates count in days since 1970-01-01. Empty buckets are left out."""
        rows = rows[np.asarray(self.codes(field + ".valid"), dtype=bool)[rows]]
        buckets = np.floor(np.asarray(self.codes(field))[rows] / interval).astype(np.int64)
        found, counts = np.unique(buckets, return_counts=True)
        return {int(k): int(c) for k, c in zip(found, counts, strict=True)}

    def sources_of(self, row: int) -> list[str]:
        """Sources holding the series at `row`, as the (possibly overlaid) bits say."""
        bits = int(self.codes("source.bits")[row])
        return [name for slot, name in enumerate(self.source_names) if bits & (1 << slot)]

    def per_source(self, rows: Rows) -> dict[str, int]:
        """Selected rows per source. A source every row (or no row) belongs to, as IDC
        in a harvest of IDC alone, is counted without reading the bits at `rows`."""
        counts: dict[str, int] = {}
        bits: np.ndarray | None = None
        for slot, name in enumerate(self.source_names):
            share = self._slot_share(slot)
            if share != "some":
                counts[name] = len(rows) if share == "all" else 0
                continue
            if bits is None:
                bits = self.codes("source.bits")[rows]
            counts[name] = int(np.count_nonzero(bits & np.uint64(1 << slot)))
        return counts

    def _slot_share(self, slot: int) -> str:
        """'all', 'none' or 'some': which rows of the whole store carry a source's bit."""
        cache = self.__dict__.setdefault("_slot_shares", {})
        if slot not in cache:
            held = int(np.count_nonzero(self.codes("source.bits") & np.uint64(1 << slot)))
            cache[slot] = "all" if held == self.rows else "none" if held == 0 else "some"
        return cache[slot]  # type: ignore[no-any-return]


def _equals_any(column: npt.NDArray[Any], wanted: Sequence[Any] | npt.NDArray[Any]) -> Mask:
    """`np.isin`, faster for the few values a filter names: one vectorised comparison
    each (0.1 ms over IDC) where `isin` sorts (7 ms); `isin` again past a dozen."""
    if len(wanted) <= 12:
        out = np.zeros(len(column), dtype=bool)
        for value in np.asarray(wanted, dtype=column.dtype):  # int32 == int64 upcasts: 5x
            out |= column == value
        return out
    return np.isin(column, np.asarray(wanted))
