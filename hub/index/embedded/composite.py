"""Harvested columns plus the live tier, seen as one row space.

Rows 0..N-1 are the generation's harvested series, rows N.. the series only live
sources answered. Each part evaluates a filter on its own columns (the cohort joins
the selected rows). Study and patient codes of the live part are mapped into the
harvested part's code space (new values after it), so distinct counts stay exact
across both.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import pyarrow as pa

from hub.index.embedded.columns import MISSING, ColumnStore, Mask, Rows
from schema.record import FIELDS, FieldKind

SHARED_CODES = ("study_uid", "patient_key")
K = TypeVar("K", str, int)


def align_codes(live: ColumnStore, main: ColumnStore) -> ColumnStore:
    """The live part with study/patient codes in the harvested part's code space."""
    arrays = {name: live.codes(name) for name in live._arrays}
    meta = {**live.meta, "cardinality": dict(live.meta["cardinality"])}
    for name in SHARED_CODES:
        codes = np.asarray(live.codes(name))
        local = live.dictionary(name)
        found = main.lookup(name, local.to_pylist())
        known = found != MISSING
        mapping = np.empty(len(local), dtype=np.int64)
        mapping[known] = found[known]
        mapping[~known] = main.cardinality(name) + np.arange(int((~known).sum()))
        arrays[name] = np.where(codes == MISSING, MISSING, mapping[np.maximum(codes, 0)])
        meta["cardinality"][name] = main.cardinality(name) + int((~known).sum())
    return ColumnStore(arrays, live.dictionary, meta)


class CompositeColumns:
    """The `ColumnStore` interface over a harvested part and an aligned live part."""

    def __init__(self, main: ColumnStore, live: ColumnStore) -> None:
        self.main, self.live = main, live
        self.rows = main.rows + live.rows
        self.source_names = main.source_names

    def cardinality(self, name: str) -> int:
        if name in SHARED_CODES:
            return self.live.cardinality(name)
        return self.main.cardinality(name) + self.live.cardinality(name)

    def _split(self, rows: Rows) -> tuple[Rows, Rows]:
        """Selected rows of the harvested part, and of the live part (numbered from 0)."""
        n = self.main.rows
        cut = int(np.searchsorted(rows, n))
        return rows[:cut], rows[cut:] - n

    def distinct(self, name: str, rows: Rows) -> int:
        size = self.cardinality(name)
        seen = np.zeros(size + 1, dtype=bool)
        main_rows, live_rows = self._split(rows)
        seen[self.main.codes(name)[main_rows]] = True
        seen[self.live.codes(name)[live_rows]] = True
        return int(seen[:size].sum())

    def value_counts(self, name: str, rows: Rows) -> dict[str, int]:
        main_rows, live_rows = self._split(rows)
        main = self.main.value_counts(name, main_rows)
        return _summed(main, self.live.value_counts(name, live_rows))

    def top_values(
        self, name: str, rows: Rows, size: int, outside: Rows | None = None
    ) -> tuple[list[tuple[str, int]], int]:
        """As `ColumnStore.top_values` (most rows first, ties by value; and the rows holding
        any value); `outside` is not needed: the live part is small."""
        counted = self.value_counts(name, rows)
        top = sorted(counted.items(), key=lambda item: (-item[1], item[0]))
        return top[:size], sum(counted.values())

    def sources_of(self, row: int) -> list[str]:
        """Sources holding the series at `row`: a harvested series' bits say which live
        sources also answered it."""
        if row < self.main.rows:
            return self.main.sources_of(row)
        return self.live.sources_of(row - self.main.rows)

    def histogram(self, field: str, rows: Rows, interval: float) -> dict[int, int]:
        main_rows, live_rows = self._split(rows)
        main = self.main.histogram(field, main_rows, interval)
        return _summed(main, self.live.histogram(field, live_rows, interval))

    def per_source(self, rows: Rows) -> dict[str, int]:
        main_rows, live_rows = self._split(rows)
        main, live = self.main.per_source(main_rows), self.live.per_source(live_rows)
        return {name: main.get(name, 0) + live.get(name, 0) for name in self.source_names}

    def sort_values(self, field: str, rows: np.ndarray) -> tuple[np.ndarray, Mask]:
        n = self.main.rows
        head, tail = rows[rows < n], rows[rows >= n] - n
        main_values, main_present = self.main.sort_values(field, head)
        live_values, live_present = self.live.sort_values(field, tail)
        if FIELDS[field].kind in (FieldKind.KEYWORD, FieldKind.TEXT):
            # codes of different dictionaries: rank live values inside the main dictionary
            ordered = np.asarray(self.main.dictionary(field).to_pylist(), dtype=object)
            taken = self.live.dictionary(field).take(pa.array(np.maximum(live_values, 0)))
            strings = np.asarray(taken.to_pylist(), dtype=object)
            pos = np.searchsorted(ordered, strings)
            exact = (pos < len(ordered)) & (ordered[np.minimum(pos, len(ordered) - 1)] == strings)
            live_values = np.where(exact, 2 * pos, 2 * pos - 1)
            main_values = 2 * main_values
        order = np.argsort(np.concatenate([np.flatnonzero(rows < n), np.flatnonzero(rows >= n)]))
        values = np.concatenate([main_values, live_values])[order]
        present = np.concatenate([main_present, live_present])[order]
        return values, present

    def value_range(self, field: str) -> tuple[int, int]:
        ranges = [p.value_range(field) for p in (self.main, self.live) if p.rows]
        return min(r[0] for r in ranges), max(r[1] for r in ranges)


def _summed(first: dict[K, int], second: dict[K, int]) -> dict[K, int]:
    return {key: first.get(key, 0) + second.get(key, 0) for key in first.keys() | second.keys()}
