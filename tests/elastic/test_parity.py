"""Both backends give the same answers over the same small real IDC corpus.

Every test runs once per backend (`backend` fixture: embedded, elastic) and checks the
answer against what the snapshot records say (`tests/elastic/expect.py`, the reference
evaluator), so the two backends agree because each is right: counts, facets with
their `missing`, histograms, series order and cursor paging, across the reference
cohorts of `tests/hub/test_reference.py` and random filters. The cluster counts studies
and patients by its level indices here (checked), and its composite fallback gives
the same numbers.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.index.base import SortKey
from hub.index.elastic.backend import ElasticIndex
from hub.index.elastic.cohort import ElasticCohort
from hub.index.elastic.mapping import PATIENT_KEY
from hub.index.embedded.backend import EmbeddedIndex
from hub.index.protocol import CohortView
from schema.filters import parse_filter
from tests.elastic import expect
from tests.elastic.expect import page_through, view
from tests.hub.test_reference import COHORTS
from tests.reference import filter_strategy, value_pools

Backend = EmbeddedIndex | ElasticIndex
Record = dict[str, Any]
FACETS = ["modality", "body_part", "sex", "collection", "license", "manufacturer", "disease"]
LUAD = {"=": {"collection": "tcga_luad"}}
SORTABLE = {"IN": {"collection": ["tcga_luad", "c4kc_kits", "icdc_glioma"]}}


@pytest.mark.parametrize("filter_json", [c[1] for c in COHORTS], ids=[c[0] for c in COHORTS])
def test_counts_facets_histograms(
    backend: Backend, small_records: list[Record], filter_json: Any
) -> None:
    rows = expect.chosen(small_records, parse_filter(filter_json))
    v = view(backend, filter_json)
    assert v.counts() == expect.counts(rows)
    _counted_by_levels(v)
    assert v.by_source().get("idc", 0) == len(rows)
    assert v.facets([*FACETS, "source"], 1000) == [
        expect.facet(rows, f, 1000) for f in [*FACETS, "source"]
    ]
    assert v.histogram("age", 10) == expect.histogram(rows, "age", 10)
    assert v.histogram("study_date", 365) == expect.histogram(rows, "study_date", 365)


@pytest.mark.parametrize("filter_json", [None, {"!=": {"body_part": "CHEST"}}, LUAD])
def test_top_facets_and_fractional_histograms(
    backend: Backend, small_records: list[Record], filter_json: Any
) -> None:
    """Facets cut to a few buckets (ties by key) and buckets of a non-integral width."""
    rows = expect.chosen(small_records, parse_filter(filter_json))
    v = view(backend, filter_json)
    assert v.facets(FACETS, 3) == [expect.facet(rows, f, 3) for f in FACETS]
    assert v.histogram("instance_count", 250.5) == expect.histogram(rows, "instance_count", 250.5)
    assert v.histogram("age", 7.5) == expect.histogram(rows, "age", 7.5)


@pytest.mark.parametrize("filter_json", [c[1] for c in COHORTS], ids=[c[0] for c in COHORTS])
def test_first_page(backend: Backend, small_records: list[Record], filter_json: Any) -> None:
    rows = expect.chosen(small_records, parse_filter(filter_json))
    page = view(backend, filter_json).series(25, None, [])
    assert [n["series_uid"] for n in page.nodes] == expect.ordered(rows)[:25]
    assert page.total == len(rows) and page.has_next == (len(rows) > 25)


def test_cursor_paging_visits_every_page(backend: Backend, small_records: list[Record]) -> None:
    rows = expect.chosen(small_records, parse_filter(LUAD))
    assert 2000 < len(rows) < 10_000
    uids = [n["series_uid"] for n in page_through(backend, LUAD, 400)]
    assert uids == expect.ordered(rows)
    # a cursor is enough to go on: a new view of the same question (another replica) takes it
    first = view(backend, LUAD).series(1000, None, [])
    second = view(backend, LUAD).series(1000, first.end_cursor, [])
    third = view(backend, LUAD).series(10, second.end_cursor, [])
    assert [n["series_uid"] for n in third.nodes] == uids[2000:2010] and third.has_next


@pytest.mark.parametrize("descending", [False, True], ids=["asc", "desc"])
@pytest.mark.parametrize("field", ["age", "body_part", "study_date", "series_description"])
def test_sorted_paging(
    backend: Backend, small_records: list[Record], field: str, descending: bool
) -> None:
    """Ties in row order, missing values last: across pages and into the missing tail."""
    key = SortKey(field, descending)
    rows = expect.chosen(small_records, parse_filter(SORTABLE))
    if field in ("age", "body_part"):  # the pages must run into the tail of missing values
        assert sum(r[field] is None for r in rows) > 997
    nodes = page_through(backend, SORTABLE, 997, [key])
    assert [n["series_uid"] for n in nodes] == expect.ordered(rows, key)


def test_paged_documents_are_the_snapshot_records(
    backend: Backend, small_records: list[Record]
) -> None:
    by_uid = {r["series_uid"]: r for r in small_records}
    for node in page_through(backend, {"=": {"collection": "c4kc_kits"}}, 500):
        rec = by_uid[node["series_uid"]]
        for name in ("collection", "patient_id", "study_uid", "modality", "body_part", "sex",
                     "age", "license", "disease", "manufacturer", "study_description",
                     "series_description", "instance_count", "size_bytes", "viewer_url",
                     "download_url"):  # fmt: skip
            assert node[name] == rec[name], name
        assert node["study_date"] == (rec["study_date"].isoformat() if rec["study_date"] else None)
        assert node["sources"] == ["idc"] and node["source"] == "idc"


@pytest.mark.parametrize(
    ("filter_json", "text"),
    [(None, "lung"), ({"IN": {"modality": ["CT", "PT"]}}, "CT chest"), (None, "T1_weighted-3D")],
)
def test_text_search_ranks_the_same_series(
    backend: Backend, small_records: list[Record], filter_json: Any, text: str
) -> None:
    node = parse_filter({"AND": [filter_json or {"AND": []}, {"search": {"keyword": text}}]})
    rows = expect.chosen(small_records, node)
    counted = view(backend, filter_json, text)
    assert counted.counts() == expect.counts(rows)
    _counted_by_levels(counted)
    ranked = page_through(backend, filter_json, 300, text=text)
    assert sorted(n["series_uid"] for n in ranked) == sorted(r["series_uid"] for r in rows)
    scores = [n["score"] for n in ranked]
    assert scores == sorted(scores, reverse=True)
    if len(rows) > 10:
        assert scores[0] > scores[-1], "BM25 should not rank everything the same"
    ascending = page_through(backend, filter_json, 300, [SortKey("score")], text=text)
    assert [n["score"] for n in ascending] == sorted(scores)


@pytest.fixture(scope="module")
def pools(small_records: list[Record]) -> dict[str, list[Any]]:
    return value_pools(small_records)


@settings(
    max_examples=30,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_random_filters_agree_with_the_evaluator(
    elastic_small: ElasticIndex, small_records: list[Record], pools: dict[str, list[Any]],
    data: st.DataObject,
) -> None:  # fmt: skip
    """The elastic backend on random filters over real values (the embedded one has its own)."""
    filter_json = data.draw(filter_strategy(pools), label="filter")
    rows = expect.chosen(small_records, parse_filter(filter_json))
    v = view(elastic_small, filter_json)
    assert v.counts() == expect.counts(rows)
    _counted_by_levels(v)
    assert v.facets(["modality"], 100) == [expect.facet(rows, "modality", 100)]


@pytest.mark.parametrize(
    "filter_json", [c[1] for c in COHORTS[:8]], ids=[c[0] for c in COHORTS[:8]]
)
def test_both_exact_methods_agree(
    elastic_small: ElasticIndex, small_records: list[Record], filter_json: Any
) -> None:
    """The composite aggregation (the fallback) counts what the level indices count."""
    rows = expect.chosen(small_records, parse_filter(filter_json))
    v = view(elastic_small, filter_json)
    assert isinstance(v, ElasticCohort)
    distinct = v.owner.runner.run(_composite(v))
    assert distinct == (expect.counts(rows).studies, expect.counts(rows).patients)


async def _composite(v: ElasticCohort) -> tuple[int, int]:
    return await v.counting.distinct("study_uid"), await v.counting.distinct(PATIENT_KEY)


def _counted_by_levels(v: CohortView) -> None:
    """Over a harvested corpus without live answers the cluster counts by its level indices."""
    if isinstance(v, ElasticCohort):
        assert v.counting.method == "levels"
