"""Both backends implement the whole index-backend protocol, and give the same answers
through it: every `IndexBackend` method with the protocol's parameters, cohorts that are
`CohortView`s, fast paths (record stream, series and study windows) equal to the
protocol's defaults built on `series` paging, stats that describe what is served, and
cursors that belong to one backend's question only.
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from hub.index.base import CohortQuery, QueryError
from hub.index.protocol import CohortView, IndexBackend
from schema.filters import parse_filter

CT = {"=": {"modality": "CT"}}
PROTOCOL_METHODS = [
    name
    for name, member in inspect.getmembers(IndexBackend, inspect.isfunction)
    if not name.startswith("_")
]


def _query(filter_json: Any, text: str | None = None) -> CohortQuery:
    return CohortQuery(parse_filter(filter_json), text)


def test_the_protocol_lists_what_the_hub_uses() -> None:
    assert set(PROTOCOL_METHODS) >= {
        "ready",
        "cohort",
        "snapshots",
        "publish",
        "reopen",
        "add_live_many",
        "prepare",
        "warm_live",
        "stats",
        "close",
    }


@pytest.mark.parametrize("name", PROTOCOL_METHODS)
def test_every_protocol_method_is_implemented_with_its_parameters(
    backend: IndexBackend, name: str
) -> None:
    wanted = inspect.signature(getattr(IndexBackend, name))
    method = getattr(type(backend), name, None)
    assert callable(method), f"{type(backend).__name__} lacks {name}"
    got = inspect.signature(method)
    assert list(got.parameters) == list(wanted.parameters)
    assert inspect.iscoroutinefunction(method) == inspect.iscoroutinefunction(
        getattr(IndexBackend, name)
    )


def test_cohorts_are_cohort_views(backend: IndexBackend) -> None:
    view = backend.cohort(_query(CT))
    assert CohortView in type(view).__mro__  # subclassed: the defaults are inherited
    assert view.counts().series > 0


@pytest.mark.parametrize(
    ("filter_json", "text"),
    [(CT, None), ({"AND": [{"=": {"modality": "MR"}}, {">=": {"age": 40}}]}, None)],
)
def test_fast_paths_equal_the_protocol_defaults(
    backend: IndexBackend, filter_json: Any, text: str | None
) -> None:
    view = backend.cohort(_query(filter_json, text))
    total = view.counts()
    fast = [r for chunk in view.record_chunks(chunk_rows=40) for r in chunk]
    paged = [r for chunk in CohortView.record_chunks(view) for r in chunk]
    assert len(fast) == len(paged) == total.series > 0
    assert [r["series_uid"] for r in fast] == [r["series_uid"] for r in paged]
    assert all(set(r["sources"]) == set(p["sources"]) for r, p in zip(fast, paged, strict=True))
    limited = sum(len(chunk) for chunk in view.record_chunks(limit=7, chunk_rows=3))
    assert limited == min(7, total.series)
    for offset, limit in ((0, 5), (3, 11), (total.series - 2, 10)):
        docs, count = view.series_window(offset, limit)
        want_docs, want_count = CohortView.series_window(view, offset, limit)
        assert count == want_count == total.series
        assert [d["series_uid"] for d in docs] == [d["series_uid"] for d in want_docs]
        studies, studies_count = view.study_window(offset, limit)
        assert (studies, studies_count) == CohortView.study_window(view, offset, limit)
        assert studies_count == total.studies


def test_stats_describe_what_is_served(backend: IndexBackend) -> None:
    stats = backend.stats()
    assert backend.ready() and stats.generation
    assert stats.series == sum(s.series for s in backend.snapshots()) > 0
    assert stats.bytes is None or stats.bytes > 0
    assert backend.stats().generation == stats.generation  # nothing changed: same name


def test_embedded_stats_give_bytes_on_disk(embedded_small: IndexBackend) -> None:
    stats = embedded_small.stats()
    assert stats.bytes is not None and stats.bytes > 100_000


def test_a_cursor_belongs_to_one_backend(
    embedded_small: IndexBackend, elastic_small: IndexBackend
) -> None:
    pages = {}
    for name, index in (("embedded", embedded_small), ("elastic", elastic_small)):
        page = index.cohort(_query(CT)).series(3, None, [])
        assert page.end_cursor is not None and page.has_next
        pages[name] = page
    embedded_next = embedded_small.cohort(_query(CT)).series(3, pages["embedded"].end_cursor, [])
    elastic_next = elastic_small.cohort(_query(CT)).series(3, pages["elastic"].end_cursor, [])
    assert [n["series_uid"] for n in embedded_next.nodes] == [
        n["series_uid"] for n in elastic_next.nodes
    ]
    with pytest.raises(QueryError, match="does not belong"):
        embedded_small.cohort(_query(CT)).series(3, pages["elastic"].end_cursor, [])
    with pytest.raises(QueryError, match="does not belong"):
        elastic_small.cohort(_query(CT)).series(3, pages["embedded"].end_cursor, [])
