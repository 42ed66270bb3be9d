"""The reference evaluator, run once per distinct combination of the fields a filter reads.

`schema.evaluate.matches` over the 27,000 small-corpus records costs about 0.1 s a filter
(0.4 s for free text, which tokenises every description). A filter's outcome depends only
on the fields it reads, and those take few distinct combinations (8 collections, a few
hundred descriptions), so the records are grouped by those fields once, `matches` runs on
one representative of each group, and the group's series are selected or not together.
The verdict is still the evaluator's own, on the same values.

`index_selection` reads what the embedded index selected, both ways: the rows its
compiled tantivy query matches and the rows (and series UIDs) its numpy masks keep.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from hub.index.embedded.cohort import EmbeddedCohort
from hub.index.embedded.columns import ColumnStore
from schema.evaluate import matches
from schema.filters import Node, fields_used

Record = dict[str, Any]


def _frozen(value: Any) -> Hashable:
    return tuple(value) if isinstance(value, list) else value


class GroupedReference:
    """Selected series UIDs of a set of records, by the reference evaluator."""

    def __init__(self, records: Sequence[Record]) -> None:
        self.records = records
        self._groups: dict[tuple[str, ...], dict[tuple[Hashable, ...], list[str]]] = {}

    def _by(self, fields: tuple[str, ...]) -> dict[tuple[Hashable, ...], list[str]]:
        groups = self._groups.get(fields)
        if groups is None:
            groups = {}
            for record in self.records:
                key = tuple(_frozen(record.get(f)) for f in fields)
                groups.setdefault(key, []).append(record["series_uid"])
            self._groups[fields] = groups
        return groups

    def uids(self, node: Node) -> set[str]:
        used = set(fields_used(node))
        if "source" in used:
            used.add("sources")  # `source` tests every repository holding the series
        fields = tuple(sorted(used))
        selected: set[str] = set()
        for key, uids in self._by(fields).items():
            representative = {
                f: list(v) if isinstance(v, tuple) else v for f, v in zip(fields, key, strict=True)
            }
            if matches(node, representative):
                selected.update(uids)
        return selected


def index_selection(view: EmbeddedCohort) -> tuple[set[int], set[int], set[str]]:
    """(rows tantivy's query matches, rows the numpy masks keep, their series UIDs)."""
    searcher = view.gen.main.searcher
    hits = searcher.search(
        view.tantivy_query, limit=max(1, searcher.num_docs), count=False, order_by_field="row"
    ).hits
    rows = np.asarray(view.rows)
    columns = view.gen.columns
    assert isinstance(columns, ColumnStore)  # a harvested index, no live rows
    codes = pa.array(columns.codes("series_uid")[rows])
    uids = set(columns.dictionary("series_uid").take(codes).to_pylist())
    return {int(h[0]) for h in hits}, set(rows.tolist()), uids
