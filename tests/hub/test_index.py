"""The embedded index on a small real corpus (8 IDC collections, ~27,000 series).

Paging, sorting, text ranking and filter evaluation are checked against the harvested
snapshot itself, evaluated record by record with the reference semantics of
`schema.evaluate.matches`; the tantivy and numpy compilers are checked against each
other; and a harvest that fails half-way must leave what the hub serves untouched.
"""

from __future__ import annotations

import asyncio
import collections
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hub.index.embedded.cohort
import hub.service
from adapters.batch import ARROW_SCHEMA
from adapters.spi import (
    Adapter,
    AdapterError,
    Capabilities,
    SourceSettings,
    TransientSourceError,
    Translation,
)
from hub.config import HubConfig, HubSettings
from hub.index.base import QueryError, SortKey
from hub.index.snapshots import SnapshotStore
from hub.service import Hub
from schema.evaluate import matches, tokenize
from schema.filters import Node, Search, parse_filter
from schema.record import TEXT_FIELDS
from tests.reference import filter_strategy, value_pools

Record = dict[str, Any]


@pytest.fixture(scope="module")
def pools(records: list[Record]) -> dict[str, list[Any]]:
    return value_pools(records)


def expected_uids(records: list[Record], node: Node) -> set[str]:
    return {r["series_uid"] for r in records if matches(node, r)}


def page_through(
    hub: Hub,
    filter_json: Any,
    size: int,
    sort: list[SortKey] | None = None,
    text: str | None = None,
) -> list[dict[str, Any]]:
    view = hub.cohort(filter_json, text).view
    nodes: list[dict[str, Any]] = []
    after = None
    while True:
        page = view.series(size, after, sort or [])
        assert len(page.nodes) == len(page.cursors) <= size
        nodes += page.nodes
        if not page.has_next:
            break
        assert page.end_cursor is not None and len(page.nodes) == size
        after = page.end_cursor
    assert len(nodes) == page.total
    return nodes


# ----------------------------------------------------------------------- cursor paging

LUAD = {"=": {"collection": "tcga_luad"}}


def test_cursor_paging_visits_every_series_once(small_hub: Hub, records: list[Record]) -> None:
    expected = expected_uids(records, parse_filter(LUAD))
    assert 2000 < len(expected) < 10_000
    first = [n["series_uid"] for n in page_through(small_hub, LUAD, 500)]
    assert len(first) == len(set(first)) == len(expected)
    assert set(first) == expected
    again = [n["series_uid"] for n in page_through(small_hub, LUAD, 500)]
    assert again == first  # stable order across runs


def test_paged_documents_are_the_snapshot_records(small_hub: Hub, records: list[Record]) -> None:
    by_uid = {r["series_uid"]: r for r in records}
    for node in page_through(small_hub, {"=": {"collection": "c4kc_kits"}}, 200):
        rec = by_uid[node["series_uid"]]
        for name in (
            "collection",
            "patient_id",
            "study_uid",
            "modality",
            "body_part",
            "sex",
            "age",
            "license",
            "disease",
            "manufacturer",
            "study_description",
            "series_description",
            "instance_count",
            "size_bytes",
        ):
            assert node[name] == rec[name], name
        date = rec["study_date"]
        assert node["study_date"] == (date.isoformat() if date else None)
        assert node["sources"] == ["idc"]


def test_deep_page_by_repeated_after(small_hub: Hub) -> None:
    everything = [n["series_uid"] for n in page_through(small_hub, LUAD, 1000)]
    view = small_hub.cohort(LUAD, None).view
    after = None
    for _ in range(2):  # two pages of 1000: the cursor now points at position 2000
        page = view.series(1000, after, [])
        after = page.end_cursor
    deep = view.series(10, after, [])
    assert [n["series_uid"] for n in deep.nodes] == everything[2000:2010]
    assert deep.has_next
    # A fresh view of the same question accepts the same cursor.
    again = small_hub.cohort(LUAD, None).view.series(10, after, [])
    assert [n["series_uid"] for n in again.nodes] == everything[2000:2010]


def test_cursor_of_another_question_is_refused(small_hub: Hub) -> None:
    page = small_hub.cohort(LUAD, None).view.series(5, None, [])
    other = small_hub.cohort({"=": {"collection": "c4kc_kits"}}, None).view
    with pytest.raises(QueryError):
        other.series(5, page.end_cursor, [])
    with pytest.raises(QueryError):
        other.series(5, "not-a-cursor", [])


def test_last_page_and_empty_cohort(small_hub: Hub) -> None:
    view = small_hub.cohort({"=": {"collection": "no_such_collection"}}, None).view
    page = view.series(50, None, [])
    assert (page.total, page.nodes, page.has_next) == (0, [], False)
    kits = small_hub.cohort({"=": {"collection": "c4kc_kits"}}, None).view
    total = kits.counts().series
    page = kits.series(1000, None, [])
    assert len(page.nodes) == total and not page.has_next


# ----------------------------------------------------------------------------- sorting

SORTABLE_COHORT = {"IN": {"collection": ["tcga_luad", "c4kc_kits", "icdc_glioma"]}}


def _check_sorted(values: list[Any], descending: bool) -> None:
    present = [v for v in values if v is not None]
    first_missing = next((i for i, v in enumerate(values) if v is None), len(values))
    assert all(v is None for v in values[first_missing:]), "missing values must sort last"
    assert present == sorted(present, reverse=descending)


@pytest.mark.parametrize("descending", [False, True], ids=["asc", "desc"])
@pytest.mark.parametrize("field", ["age", "collection", "body_part", "study_date"])
def test_sort(small_hub: Hub, records: list[Record], field: str, descending: bool) -> None:
    nodes = page_through(small_hub, SORTABLE_COHORT, 1000, [SortKey(field, descending)])
    expected = expected_uids(records, parse_filter(SORTABLE_COHORT))
    uids = [n["series_uid"] for n in nodes]
    assert len(uids) == len(set(uids)) == len(expected) and set(uids) == expected
    values = [n[field] for n in nodes]
    _check_sorted(values, descending)
    if field in ("age", "body_part"):
        assert None in values and len({v for v in values if v is not None}) > 2
    again = page_through(small_hub, SORTABLE_COHORT, 1000, [SortKey(field, descending)])
    assert [n["series_uid"] for n in again] == uids  # ties broken the same way each time


@pytest.mark.parametrize("descending", [False, True], ids=["asc", "desc"])
def test_sorted_pages_order_only_as_deep_as_asked_and_agree_with_a_full_sort(
    small_hub: Hub, monkeypatch: pytest.MonkeyPatch, descending: bool
) -> None:
    """Sorted pages come from the first rows in order only, deepened as pages go
    deeper: together they are the full sort by (value, row), missing values last."""
    monkeypatch.setattr(hub.index.embedded.cohort, "RANKING_MIN", 8)
    key = SortKey("age", descending)
    paged = [(n["age"], n["row"]) for n in page_through(small_hub, SORTABLE_COHORT, 7, [key])]
    present = sorted((a, r) for a, r in paged if a is not None)
    if descending:
        present = sorted(present, key=lambda p: (-p[0], p[1]))
    missing = sorted((a, r) for a, r in paged if a is None)
    assert len(paged) > 50 and missing and paged == present + missing


def test_sort_on_unknown_or_multi_valued_field_is_refused(small_hub: Hub) -> None:
    view = small_hub.cohort(None, None).view
    for key in (SortKey("nope"), SortKey("source")):
        with pytest.raises(QueryError):
            view.series(10, None, [key])


# ------------------------------------------------------------------------- text search


def _words(node: dict[str, Any]) -> set[str]:
    words: set[str] = set()
    for name in TEXT_FIELDS:
        if node[name]:
            words.update(tokenize(node[name]))
    return words


def test_text_search_counts_equal_the_evaluator(small_hub: Hub, records: list[Record]) -> None:
    view = small_hub.cohort(None, "lung").view
    expected = expected_uids(records, Search("lung", TEXT_FIELDS))
    assert len(expected) > 100
    assert view.counts().series == len(expected)
    nodes = page_through(small_hub, None, 1000, text="lung")
    assert {n["series_uid"] for n in nodes} == expected
    assert all("lung" in _words(n) for n in nodes)


def test_text_search_ranks_by_bm25(small_hub: Hub) -> None:
    view = small_hub.cohort(None, "lung").view
    gen = view.gen
    hits = gen.searcher.search(view.tantivy_query, limit=view.counts().series).hits
    rows = gen.searcher.fast_field_values("row", [h[1] for h in hits])
    score = {int(r): s for (s, _), r in zip(hits, rows, strict=True)}
    page = view.series(100, None, [])
    scores = [score[n["row"]] for n in page.nodes]
    assert scores == sorted(scores, reverse=True)
    assert scores[0] > scores[-1], "the ranking should not be flat"
    assert all("lung" in _words(n) for n in page.nodes)


def test_text_pages_rank_only_as_deep_as_asked_and_agree_with_the_full_ranking(
    small_hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pages of a text question come from a ranking of the best hits only, deepened as
    the pages go deeper; together they are every hit once, best first, as one full
    tantivy ranking orders them."""
    monkeypatch.setattr(hub.index.embedded.cohort, "RANKING_MIN", 8)
    view = small_hub.cohort({"=": {"modality": "CT"}}, "lung").view
    gen = view.gen
    total = view.counts().series
    assert total > 100
    hits = gen.searcher.search(view.tantivy_query, limit=total).hits
    rows = gen.searcher.fast_field_values("row", [h[1] for h in hits])
    full = [int(r) for r in rows]
    paged = [n["row"] for n in page_through(small_hub, {"=": {"modality": "CT"}}, 7, text="lung")]
    assert len(paged) == total == len(set(paged))
    assert paged == full
    first = small_hub.cohort({"=": {"modality": "CT"}}, "lung").view.series(7, None, [])
    assert first.total == total and first.has_next


def test_text_search_with_filter(small_hub: Hub, records: list[Record]) -> None:
    filter_json = {"IN": {"modality": ["CT", "PT"]}}
    expected = expected_uids(
        records, parse_filter({"AND": [filter_json, {"search": {"keyword": "CT chest"}}]})
    )
    assert expected
    view = small_hub.cohort(filter_json, "CT chest").view
    assert view.counts().series == len(expected)
    nodes = page_through(small_hub, filter_json, 500, text="CT chest")
    assert {n["series_uid"] for n in nodes} == expected


# ------------------------------------------------- property: hub == evaluator, on real values


@settings(
    max_examples=120,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_random_filters_agree_with_the_evaluator(
    small_hub: Hub, records: list[Record], pools: dict[str, list[Any]], data: st.DataObject
) -> None:
    filter_json = data.draw(filter_strategy(pools), label="filter")
    node = parse_filter(filter_json)
    chosen = [r for r in records if matches(node, r)]
    view = small_hub.cohort(filter_json, None).view
    counts = view.counts()
    assert counts.series == len(chosen)
    assert counts.studies == len({r["study_uid"] for r in chosen})
    assert counts.patients == len({(r["collection"], r["patient_id"]) for r in chosen})
    # The tantivy compiler (facets, histograms, ranking) agrees with the numpy one (counts).
    assert view.gen.searcher.search(view.tantivy_query, limit=1).count == counts.series
    (modality,) = view.facets(["modality"], 100)
    expected = collections.Counter(r["modality"] for r in chosen)
    assert {b.key: b.count for b in modality.buckets} == {
        k: n for k, n in expected.items() if k is not None
    }
    assert modality.missing == expected.get(None, 0)


# ---------------------------------------------- a failed re-harvest changes nothing served


class HalfwayAdapter(Adapter):
    """Yields one good batch, then loses the connection."""

    capabilities: ClassVar[Capabilities] = Capabilities(harvest=True, live_search=False)
    first_batch: ClassVar[pa.RecordBatch | None] = None
    fail: ClassVar[bool] = True

    def translate(self, node: Node) -> Translation:
        return Translation(native=None, residual=node, description="test adapter")

    async def harvest(self) -> AsyncIterator[pa.RecordBatch]:
        assert self.first_batch is not None
        yield self.first_batch
        if self.fail:
            raise TransientSourceError("connection reset by peer")


def _tiny_hub(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Hub:
    monkeypatch.setattr(hub.service, "discover_adapters", lambda: {"halfway": HalfwayAdapter})
    config = HubConfig(
        hub=HubSettings(data_dir=data_dir),
        sources={"idc": SourceSettings(name="idc", adapter="halfway", mode="harvest")},
    )
    return Hub(config)


def _served(h: Hub) -> list[Any]:
    questions: list[Callable[[], Any]] = [
        lambda: h.cohort(None, None).view.counts(),
        lambda: h.cohort({"=": {"modality": "CT"}}, None).view.counts(),
        lambda: h.cohort(None, "lung").view.counts(),
        lambda: h.cohort(None, None).view.facets(["collection"], 50),
    ]
    return [q() for q in questions]


def test_failed_reharvest_keeps_snapshot_and_counts(
    small_data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = tmp_path / "hub"
    shutil.copytree(small_data_dir, data_dir)
    store = SnapshotStore(data_dir)
    before_snapshot = store.get("idc")
    assert before_snapshot is not None
    table = pq.read_table(before_snapshot.path).slice(0, 100)
    HalfwayAdapter.first_batch = table.to_batches()[0].cast(ARROW_SCHEMA)

    serving = _tiny_hub(data_dir, monkeypatch)
    before = _served(serving)
    assert before[0].series == before_snapshot.series > 100

    HalfwayAdapter.fail = True
    harvesting = _tiny_hub(data_dir, monkeypatch)
    with pytest.raises(AdapterError, match="connection reset"):
        asyncio.run(harvesting.harvest())
    asyncio.run(harvesting.aclose())

    assert store.get("idc") == before_snapshot
    assert before_snapshot.path.is_file()
    assert not list(data_dir.rglob("*.partial"))
    assert _served(serving) == before  # the hub that was serving all along
    assert _served(_tiny_hub(data_dir, monkeypatch)) == before  # a freshly started hub

    # Control: the same adapter, when it does not fail, does replace the snapshot.
    HalfwayAdapter.fail = False
    try:
        ok = _tiny_hub(data_dir, monkeypatch)
        asyncio.run(ok.harvest())
        assert ok.cohort(None, None).view.counts().series == 100
        assert store.get("idc").series == 100  # type: ignore[union-attr]
    finally:
        HalfwayAdapter.fail = True


def test_documents_by_address_equal_documents_found_by_row(small_hub: Hub) -> None:
    """The generation's document addresses read the same documents the search on `row`
    finds, for rows from every segment."""
    from hub.index.embedded.generation import stored_documents

    gen = small_hub.cohort(None, None).view.gen
    addresses = gen.files.addresses
    assert addresses is not None and (addresses >= 0).all()
    rows = list(range(0, gen.base_columns.rows, 97))[::-1]
    by_address = stored_documents(gen.index, gen.searcher, rows, addresses)
    by_search = stored_documents(gen.index, gen.searcher, rows)
    assert [d["row"] for d in by_address] == rows
    assert by_address == by_search
