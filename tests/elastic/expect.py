"""What a backend must answer, computed in plain Python from the snapshot records.

The filter semantics are `schema.evaluate.matches` (the reference evaluator); counting,
facets, histograms and orders follow DESIGN.md and the embedded index's documented
behaviour (row order = collection, patient, study, series; missing values sort last;
histogram buckets from the first to the last non-empty one, gaps filled).
"""

from __future__ import annotations

import collections
import datetime as dt
import math
from typing import Any

from hub.index.base import Bucket, CohortQuery, Counts, Facet, SortKey
from hub.index.elastic.backend import ElasticIndex
from hub.index.embedded.backend import EmbeddedIndex
from hub.index.protocol import CohortView
from schema.evaluate import matches
from schema.filters import Node, parse_filter

Record = dict[str, Any]
Backend = EmbeddedIndex | ElasticIndex
EPOCH = dt.date(1970, 1, 1)


def view(index: Backend, filter_json: Any, text: str | None = None) -> CohortView:
    return index.cohort(CohortQuery(parse_filter(filter_json), text))


def page_through(
    index: Backend, filter_json: Any, size: int, sort: list[SortKey] | None = None,
    text: str | None = None,
) -> list[dict[str, Any]]:  # fmt: skip
    v = view(index, filter_json, text)
    nodes: list[dict[str, Any]] = []
    after = None
    while True:
        page = v.series(size, after, sort or [])
        assert len(page.nodes) == len(page.cursors) <= size
        nodes += page.nodes
        if not page.has_next:
            break
        assert page.end_cursor == page.cursors[-1] and len(page.nodes) == size
        after = page.end_cursor
    assert len(nodes) == page.total
    return nodes


def chosen(records: list[Record], node: Node) -> list[Record]:
    return [r for r in records if matches(node, r)]


def counts(rows: list[Record]) -> Counts:
    return Counts(
        patients=len({(r["collection"], r["patient_id"]) for r in rows}),
        studies=len({r["study_uid"] for r in rows}),
        series=len(rows),
    )


def facet(rows: list[Record], field: str, size: int) -> Facet:
    if field == "source":
        counted = collections.Counter(s for r in rows for s in r["sources"])
        missing = 0
    else:
        counted = collections.Counter(r[field] for r in rows if r[field] is not None)
        missing = sum(1 for r in rows if r[field] is None)
    buckets = sorted((Bucket(k, n) for k, n in counted.items()), key=lambda b: (-b.count, b.key))
    return Facet(field, buckets[:size], missing)


def histogram(rows: list[Record], field: str, interval: float) -> list[Bucket]:
    values = [r[field] for r in rows if r[field] is not None]
    is_date = isinstance(values[0], dt.date) if values else False
    if is_date:
        values = [(v - EPOCH).days for v in values]
    slots = collections.Counter(math.floor(v / interval) for v in values)
    if not slots:
        return []
    out = []
    for slot in range(min(slots), max(slots) + 1):
        key = slot * interval
        if is_date:
            label = (EPOCH + dt.timedelta(days=int(key))).isoformat()
        else:
            label = str(int(key)) if float(key).is_integer() else str(key)
        out.append(Bucket(label, slots.get(slot, 0)))
    return out


def row_key(r: Record) -> tuple[str, str, str, str]:
    return (r["collection"], r["patient_id"], r["study_uid"], r["series_uid"])


def ordered(rows: list[Record], sort: SortKey | None = None) -> list[str]:
    """Series uids in the order the hub must page them."""
    by_row = sorted(rows, key=row_key)
    if sort is None:
        return [r["series_uid"] for r in by_row]
    present = [r for r in by_row if r[sort.field] is not None]
    missing = [r for r in by_row if r[sort.field] is None]
    # a stable sort (`reverse=True` included) keeps ties in row order, as the hub must
    present.sort(key=lambda r: r[sort.field], reverse=sort.descending)
    return [r["series_uid"] for r in present + missing]
