"""Live answers merge into the cluster as they merge into the embedded index.

A "tcia" answer holds 100 series the harvested IDC slice has (one hit each, listing
both sources, IDC's values) and 50 it does not; an "orthanc" answer with a better
priority shares 20 of those and adds 10. Both backends get the same answers and must
give the same counts, facets, sources and series (pages in their own order: the
embedded index pages live-only series after the harvested ones). Expiry is checked on the cluster:
once past their time to live, the answers leave no trace. Questions that live answers
touch are counted by the composite aggregation (the level indices hold harvested
series only), the others by the level indices: both must give the embedded counts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pytest

from hub.index.base import CohortQuery, Counts, LiveAnswer
from hub.index.elastic import live
from hub.index.elastic.backend import ElasticIndex
from hub.index.embedded.backend import EmbeddedIndex
from schema.filters import parse_filter
from tests.elastic.slices import as_source, assert_same, embedded, publish, renamed, write


def _with(table: pa.Table, name: str, values: list[object]) -> pa.Table:
    column = pa.array(values, type=table.schema.field(name).type)
    return table.set_column(table.schema.get_field_index(name), name, column)


def test_live_answers_merge_like_the_embedded_tier(
    kits: pa.Table,
    tmp_path: Path,
    make_elastic: Callable[..., ElasticIndex],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write(tmp_path, "idc", kits.slice(0, 200))
    priorities = {"idc": 100}
    index = make_elastic()
    publish(index, tmp_path, priorities)
    reference = embedded(tmp_path, priorities)
    assert_same(reference, index)
    before = index.cohort(CohortQuery(parse_filter(None))).counts()

    only_tcia = renamed(kits.slice(0, 50), ".77")
    only_tcia = _with(only_tcia, "manufacturer", [None] * 25 + ["TCIA-MAKER"] * 25)
    tcia = pa.concat_tables([as_source(kits.slice(100, 100), "tcia", modality="MR"), only_tcia])
    answer = LiveAnswer("tcia", tcia.to_batches(max_chunksize=40), 300.0, 100)
    reference.add_live_many([answer])
    index.add_live_many([answer])
    assert_same(reference, index, ordered=False)
    # Questions live answers touch are counted by composite, the others by level indices.
    untouched = {"IN": {"series_uid": kits.slice(50, 50)["series_uid"].to_pylist()}}
    methods = {"composite": [None, {"!=": {"source": "tcia"}}, {"=": {"source": "idc"}}],
               "levels": [untouched, {"=": {"modality": "NONE-SUCH"}}]}  # fmt: skip
    for method, filters in methods.items():
        for filter_json in filters:
            assert _counted(index, filter_json) == _counted(reference, filter_json), filter_json
            assert _method(index, filter_json) == method, filter_json
    counts = index.cohort(CohortQuery(parse_filter(None))).counts()
    assert counts.series == before.series + 50
    by_source = index.cohort(CohortQuery(parse_filter(None))).by_source()
    assert by_source == {"idc": 200, "tcia": 150}

    orthanc = pa.concat_tables(
        [
            _with(only_tcia.slice(0, 20), "manufacturer", ["ORTHANC-MAKER"] * 10 + [None] * 10),
            renamed(kits.slice(60, 10), ".88"),
        ]
    )
    answer = LiveAnswer("orthanc", orthanc.to_batches(), 300.0, 50)
    reference.add_live_many([answer])
    index.add_live_many([answer])
    assert_same(reference, index, ordered=False)
    shared = index.cohort(CohortQuery(parse_filter({"=": {"source": "orthanc"}})))
    assert shared.counts().series == 30

    # An hour later every answer is past its time to live: nothing of them is left.
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    monkeypatch.setattr(live, "now", lambda: later)
    index.add_live_many([LiveAnswer("orthanc", [], 300.0, 50)])
    assert_same(embedded(tmp_path, priorities), index)
    assert index.cohort(CohortQuery(parse_filter(None))).counts() == before
    assert _method(index, None) == "levels"  # the live indices remain, touching nothing


def _counted(index: ElasticIndex | EmbeddedIndex, filter_json: object) -> Counts:
    return index.cohort(CohortQuery(parse_filter(filter_json))).counts()


def _method(index: ElasticIndex, filter_json: object) -> str:
    view = index.cohort(CohortQuery(parse_filter(filter_json)))
    view.counts()
    return view.counting.method


def test_a_live_source_that_leaves_is_dropped_at_once(
    kits: pa.Table, tmp_path: Path, make_elastic: Callable[..., ElasticIndex]
) -> None:
    """`reopen(drop_live)` (a live source disabled or removed at runtime, see
    hub/registry/admin.py): its answers stop counting at once on both backends, and
    the series it shared are merged again from the copies that remain."""
    write(tmp_path, "idc", kits.slice(0, 200))
    priorities = {"idc": 100}
    index = make_elastic()
    publish(index, tmp_path, priorities)
    reference = embedded(tmp_path, priorities)
    before = index.cohort(CohortQuery(parse_filter(None))).counts()
    only_tcia = renamed(kits.slice(0, 50), ".77")
    tcia = pa.concat_tables([as_source(kits.slice(100, 100), "tcia", modality="MR"), only_tcia])
    orthanc = pa.concat_tables(  # shares 20 of TCIA's own series, with a better priority
        [
            _with(only_tcia.slice(0, 20), "manufacturer", ["ORTHANC-MAKER"] * 20),
            as_source(kits.slice(150, 10), "orthanc"),
        ]
    )
    answers = [
        LiveAnswer("tcia", tcia.to_batches(max_chunksize=40), 300.0, 100),
        LiveAnswer("orthanc", as_source(orthanc, "orthanc").to_batches(), 300.0, 50),
    ]
    for backend in (reference, index):
        backend.add_live_many(answers)
    assert_same(reference, index, ordered=False)
    maker = CohortQuery(parse_filter({"=": {"manufacturer": "ORTHANC-MAKER"}}))
    assert index.cohort(maker).counts().series == 20

    for backend in (reference, index):
        backend.reopen({"orthanc"})
    assert_same(reference, index, ordered=False)
    assert index.cohort(maker).counts().series == 0  # TCIA's own record again
    gone = CohortQuery(parse_filter({"=": {"source": "orthanc"}}))
    assert index.cohort(gone).counts().series == 0
    assert [i.source for i in index.served().indices if i.kind == "live"] == ["tcia"]

    for backend in (reference, index):
        backend.reopen({"tcia"})
    assert_same(embedded(tmp_path, priorities), index)
    assert index.cohort(CohortQuery(parse_filter(None))).counts() == before
