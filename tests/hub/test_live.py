"""The live tier: live answers merged into the embedded index, de-duplicated by series.

A copy of the small real-IDC index gets a "tcia" answer holding 100 series IDC
already has (TCIA and IDC share series) and 50 it does not. The shared ones must be
one hit listing both sources, counted once; the new ones must count, facet, page and
sort with the rest; a restart must not see live documents the server left behind.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from hub.index.base import CohortQuery, SortKey
from hub.index.embedded import live
from hub.index.embedded.backend import EmbeddedIndex
from hub.index.embedded.composite import CompositeColumns
from hub.index.embedded.generation import stored_documents
from hub.index.snapshots import SnapshotStore
from schema.filters import parse_filter


@pytest.fixture()
def data_dir(small_data_dir: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "hub"
    shutil.copytree(small_data_dir, copy)
    return copy


def _tcia_answer(data_dir: Path) -> tuple[pa.Table, pa.Table]:
    snapshot = SnapshotStore(data_dir).get("idc")
    assert snapshot is not None
    idc = pq.read_table(snapshot.path)
    kits = idc.filter(pc.equal(idc["collection"], "c4kc_kits"))
    shared, extra = kits.slice(0, 100), kits.slice(100, 50)
    renamed = pc.binary_join_element_wise(extra["series_uid"], pa.scalar(".99"), "")
    extra = extra.set_column(extra.schema.get_field_index("series_uid"), "series_uid", renamed)
    return kits, pa.concat_tables([shared, extra])


def _cohort(index: EmbeddedIndex, filter_json: object, text: str | None = None):  # type: ignore[no-untyped-def]
    return index.cohort(CohortQuery(parse_filter(filter_json), text))


def test_live_answer_is_merged_and_deduplicated(data_dir: Path) -> None:
    index = EmbeddedIndex(data_dir)
    kits, answer = _tcia_answer(data_dir)
    before = _cohort(index, {"=": {"collection": "c4kc_kits"}}).counts()
    assert before.series == kits.num_rows

    index.add_live("tcia", answer.to_batches(), ttl_s=300)

    cohort = _cohort(index, {"=": {"collection": "c4kc_kits"}})
    after = cohort.counts()
    assert after.series == kits.num_rows + 50  # the 100 shared series count once
    assert after.studies == before.studies  # the new series belong to known studies
    assert cohort.by_source() == {"idc": kits.num_rows, "tcia": 150}
    sources = {b.key: b.count for b in cohort.facets(["source"], 10)[0].buckets}
    assert sources == {"idc": kits.num_rows, "tcia": 150}

    tcia = _cohort(index, {"=": {"source": "tcia"}})
    page = tcia.series(200, None, [])
    assert page.total == 150 and len(page.nodes) == 150
    both = [n for n in page.nodes if n["sources"] == ["idc", "tcia"]]
    only = [n for n in page.nodes if n["sources"] == ["tcia"]]
    assert (len(both), len(only)) == (100, 50)
    assert len({n["series_uid"] for n in page.nodes}) == 150

    text = _cohort(index, {"=": {"source": "tcia"}}, "ct")
    assert text.counts().series == len(text.series(1000, None, []).nodes)

    histogram = {b.key: b.count for b in tcia.histogram("age", 10)}
    assert sum(histogram.values()) == sum(1 for n in page.nodes if n["age"] is not None)

    by_age = tcia.series(150, None, [SortKey("age", descending=True)]).nodes
    ages = [n["age"] for n in by_age if n["age"] is not None]
    assert ages == sorted(ages, reverse=True)

    everything = _cohort(index, None).counts()
    assert everything.series == index.generation().base_columns.rows + 50


def test_refetch_replaces_and_the_harvested_index_is_never_written(data_dir: Path) -> None:
    index = EmbeddedIndex(data_dir)
    harvested = _cohort(index, None).counts()
    _, answer = _tcia_answer(data_dir)
    index.add_live("tcia", answer.to_batches(), ttl_s=300)
    index.add_live("tcia", answer.slice(0, 10).to_batches(), ttl_s=300)  # same rows again
    assert _cohort(index, {"=": {"source": "tcia"}}).counts().series == 150

    # another process reading the same data directory sees only harvested rows
    reader = EmbeddedIndex(data_dir)
    assert _cohort(reader, None).counts() == harvested
    assert _cohort(reader, {"=": {"source": "tcia"}}).counts().series == 0

    reopened = EmbeddedIndex(data_dir)  # a restart: live records are not persisted
    gen = reopened.generation()
    assert gen.searcher.num_docs == gen.base_columns.rows  # the harvested files were not touched
    assert _cohort(reopened, None).counts() == harvested
    facet = _cohort(reopened, None).facets(["source"], 10)[0]
    assert [(b.key, b.count) for b in facet.buckets] == [("idc", harvested.series)]


def test_expired_live_records_are_dropped(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(live, "MIN_RETENTION_S", 0.0)
    index = EmbeddedIndex(data_dir)
    _, answer = _tcia_answer(data_dir)
    index.add_live("tcia", answer.to_batches(), ttl_s=0)
    index.add_live("dicomweb", [], ttl_s=0)  # any later update purges what has expired
    assert _cohort(index, {"=": {"source": "tcia"}}).counts().series == 0


@pytest.mark.parametrize(
    "filter_json",
    [None, {"=": {"sex": "female"}}, {"AND": [{">=": {"age": 50}}, {"!=": {"sex": "male"}}]}],
)
def test_live_only_rows_answer_from_numpy_as_tantivy_would(
    data_dir: Path, filter_json: object
) -> None:
    """Facets, histograms and documents of live-only series come from numpy and Arrow;
    the tantivy index of the same rows (built for text questions) must agree."""
    index = EmbeddedIndex(data_dir)
    _, answer = _tcia_answer(data_dir)
    index.add_live("tcia", answer.to_batches(), ttl_s=300)
    cohort = _cohort(index, filter_json)
    gen = cohort.gen
    assert gen.live is not None and gen.live.table.num_rows == 50
    assert isinstance(gen.columns, CompositeColumns)
    columns, mask = gen.columns.live, cohort.mask[gen.columns.main.rows :]
    assert mask.any()
    rows = np.flatnonzero(mask)
    part = gen.live.tantivy()
    query = part.compiler.compile(cohort.node)
    assert part.searcher.search(query, limit=1, count=True).count == int(mask.sum())

    for name in ("modality", "sex", "body_part", "collection", "manufacturer"):
        agg = part.searcher.aggregate(query, {"f": {"terms": {"field": name, "size": 1000}}})
        expected = {str(b["key"]): int(b["doc_count"]) for b in agg["f"]["buckets"]}
        assert columns.value_counts(name, rows) == expected, name
    for name, interval in (("age", 10.0), ("study_date", 365.0), ("instance_count", 7.5)):
        agg = part.searcher.aggregate(
            query, {"h": {"histogram": {"field": name, "interval": interval}}}
        )
        expected_h = {float(b["key"]): int(b["doc_count"]) for b in agg["h"]["buckets"]}
        got = {k * interval: v for k, v in columns.histogram(name, rows, interval).items()}
        assert got == {k: v for k, v in expected_h.items() if v}, name

    every = [int(r) for r in gen.live.table["row"].to_pylist()]
    assert gen.live.documents(every) == stored_documents(part.index, part.searcher, every)


def test_remembered_rows_follow_live_answers_that_change_sources(data_dir: Path) -> None:
    """Harvested rows are remembered per question; a question naming a source must still
    see live sources mark harvested series (the memo keys it by live version)."""
    index = EmbeddedIndex(data_dir)
    _, answer = _tcia_answer(data_dir)
    by_tcia = {"=": {"source": "tcia"}}
    index.prepare(CohortQuery(parse_filter(by_tcia)))
    assert _cohort(index, by_tcia).counts().series == 0
    index.add_live("tcia", answer.to_batches(), ttl_s=300)
    assert _cohort(index, by_tcia).counts().series == 150
    index.add_live("tcia", answer.slice(0, 120).to_batches(), ttl_s=300)
    assert _cohort(index, by_tcia).counts().series == 150  # replaced, not added
    shared = {"AND": [by_tcia, {"=": {"collection": "c4kc_kits"}}]}
    assert _cohort(index, shared).series(200, None, []).total == 150
