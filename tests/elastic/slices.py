"""Small slices of the real IDC corpus written as source snapshots, and the comparison
of what the two backends answer over them (de-duplication and live-tier tests)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from adapters.batch import ARROW_SCHEMA
from hub.index.base import CohortQuery
from hub.index.elastic.backend import ElasticIndex
from hub.index.embedded.backend import EmbeddedIndex
from hub.index.embedded.build import build_generation
from hub.index.snapshots import SnapshotStore
from schema.filters import parse_filter
from tests.elastic.expect import page_through

FILTERS: list[Any] = [
    None,
    {"=": {"source": "tcia"}},
    {"!=": {"source": "idc"}},
    {"=": {"modality": "MR"}},
    {"is_missing": {"manufacturer": True}},
    {"=": {"manufacturer": "TCIA-MAKER"}},
]
FACETS = ["modality", "manufacturer", "body_part", "source"]
SHOWN = ("series_uid", "source", "sources", "modality", "manufacturer", "body_part", "age")


def as_source(table: pa.Table, source: str, **changes: Any) -> pa.Table:
    """The same series as another repository holds them (`changes`: column -> value)."""
    n = table.num_rows
    values = {"source": source, "sources": [source], **changes}
    for name, value in values.items():
        column = pa.array([value] * n, type=ARROW_SCHEMA.field(name).type)
        table = table.set_column(table.schema.get_field_index(name), name, column)
    return table


def renamed(table: pa.Table, suffix: str) -> pa.Table:
    """Other series (new uids) with the same values."""
    uids = pc.binary_join_element_wise(table["series_uid"], pa.scalar(suffix), "")
    return table.set_column(table.schema.get_field_index("series_uid"), "series_uid", uids)


def write(data_dir: Path, source: str, table: pa.Table) -> None:
    async def batches() -> AsyncIterator[pa.RecordBatch]:
        for batch in table.cast(ARROW_SCHEMA).to_batches(max_chunksize=100):
            yield batch

    asyncio.run(SnapshotStore(data_dir).write(source, batches()))


def publish(
    index: ElasticIndex, data_dir: Path, priorities: dict[str, int], **kw: Any
) -> list[str]:
    snapshots = SnapshotStore(data_dir).all()
    return asyncio.run(index.publish(snapshots, priorities, **kw))


def embedded(data_dir: Path, priorities: dict[str, int]) -> EmbeddedIndex:
    build_generation(data_dir / "index", SnapshotStore(data_dir).all(), priorities)
    return EmbeddedIndex(data_dir)


def answers(index: EmbeddedIndex | ElasticIndex, filter_json: Any) -> dict[str, Any]:
    view = index.cohort(CohortQuery(parse_filter(filter_json)))
    nodes = page_through(index, filter_json, 97)
    return {
        "counts": view.counts(),
        "facets": view.facets(FACETS, 50),
        "by_source": {k: v for k, v in view.by_source().items() if v},
        "series": [{k: n[k] for k in SHOWN} for n in nodes],
    }


def assert_same(one: EmbeddedIndex, other: ElasticIndex, ordered: bool = True) -> None:
    """Same answers to FILTERS; `ordered=False` compares the pages' series as sets (the
    embedded index pages live-only series after all harvested ones, where the cluster
    keeps one browse order for all)."""
    for filter_json in FILTERS:
        got, expected = answers(other, filter_json), answers(one, filter_json)
        if not ordered:
            for side in (got, expected):
                side["series"].sort(key=lambda n: n["series_uid"])
        for part in expected:
            if part == "series":  # the first series that differs says the most
                pairs = zip(got[part], expected[part], strict=False)
                first = next(((g, e) for g, e in pairs if g != e), None)
                assert first is None, (filter_json, first)
            assert got[part] == expected[part], (filter_json, part)
