"""The level indices: one document per study and per patient, exact counts from them,
and the layout every index gets from the templates.

Real IDC series (one collection) are written as two sources that share some series,
so de-duplication is at stake; every count is compared with the embedded backend
built from the same snapshots, and with the counting method the answer used.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from hub.index.base import CohortQuery
from hub.index.elastic import bulk
from hub.index.elastic.backend import ElasticIndex
from hub.index.elastic.bulk import BulkWriter, Line
from hub.index.elastic.cohort import ElasticCohort
from hub.index.elastic.layout import LEVELS
from hub.index.elastic.levels import LevelPublisher
from schema.filters import parse_filter
from tests.elastic.slices import FILTERS, as_source, assert_same, embedded, publish, renamed, write

PRIORITIES = {"idc": 10, "tcia": 50}
MORE_FILTERS: list[Any] = [
    {"AND": [{"=": {"modality": "CT"}}, {"=": {"manufacturer": "TCIA-MAKER"}}]},
    {"OR": [{"=": {"modality": "MR"}}, {">": {"age": 60}}]},
    {"search": {"keyword": "abdomen"}},
]


def _two_sources(kits: pa.Table, data_dir: Path) -> None:
    """IDC holds 300 series; TCIA 100 of them (other values) and 60 of its own, among
    them a study split across both sources."""
    write(data_dir, "idc", kits.slice(0, 300))
    shared = as_source(kits.slice(200, 100), "tcia", modality="MR", manufacturer="TCIA-MAKER")
    own = as_source(renamed(kits.slice(280, 60), ".42"), "tcia")
    write(data_dir, "tcia", pa.concat_tables([shared, own]))


def _cohort(index: ElasticIndex, filter_json: Any) -> ElasticCohort:
    return index.cohort(CohortQuery(parse_filter(filter_json)))


def _method(index: ElasticIndex, filter_json: Any) -> str:
    view = _cohort(index, filter_json)
    view.counts()
    return view.counting.method


def _level_census(index: ElasticIndex, level: str) -> dict[str, int]:
    """Documents of a level index, distinct keys, and nested series (all, distinct)."""
    aggs = {
        "keys": {"cardinality": {"field": "key", "precision_threshold": 40_000}},
        "dup": {"terms": {"field": "key", "min_doc_count": 2, "size": 10}},
        "series": {
            "nested": {"path": "series"},
            "aggs": {
                "uids": {
                    "cardinality": {"field": "series.series_uid", "precision_threshold": 40_000}
                }
            },
        },
    }
    name = index.layout.level_alias(level)
    answer = index.runner.run(index.search_in(name, size=0, track_total_hits=True, aggs=aggs))
    found = answer["aggregations"]
    return {
        "documents": answer["hits"]["total"]["value"],
        "keys": found["keys"]["value"],
        "duplicated_keys": len(found["dup"]["buckets"]),
        "series": found["series"]["doc_count"],
        "distinct_series": found["series"]["uids"]["value"],
    }


def test_level_documents_hold_each_study_and_patient_once(
    kits: pa.Table, tmp_path: Path, make_elastic: Callable[..., ElasticIndex]
) -> None:
    """Shared series go into the level documents once (their primary copy), and a study
    held partly by each source is one document."""
    _two_sources(kits, tmp_path)
    index = make_elastic()
    publish(index, tmp_path, PRIORITIES)
    everything = _cohort(index, None).counts()
    assert everything.series == 360  # 300 + 60: the 100 shared ones count once
    studies = _level_census(index, "studies")
    patients = _level_census(index, "patients")
    assert studies == {
        "documents": everything.studies,
        "keys": everything.studies,
        "duplicated_keys": 0,
        "series": 360,
        "distinct_series": 360,
    }
    assert patients["documents"] == patients["keys"] == everything.patients
    assert patients["duplicated_keys"] == 0
    assert patients["series"] == patients["distinct_series"] == 360
    # the nested copy of a shared series is the winner's (IDC's values, both sources)
    mr = {"=": {"modality": "MR"}}
    assert (
        _cohort(index, mr).counts()
        == embedded(tmp_path, PRIORITIES).cohort(CohortQuery(parse_filter(mr))).counts()
    )
    assert_same(embedded(tmp_path, PRIORITIES), index)
    assert all(_method(index, f) == "levels" for f in FILTERS)


def test_level_counts_are_the_embedded_counts_and_follow_every_publish(
    kits: pa.Table, tmp_path: Path, make_elastic: Callable[..., ElasticIndex]
) -> None:
    _two_sources(kits, tmp_path)
    index = make_elastic()
    publish(index, tmp_path, PRIORITIES)
    reference = embedded(tmp_path, PRIORITIES)
    for filter_json in [*FILTERS, *MORE_FILTERS]:
        expected = reference.cohort(CohortQuery(parse_filter(filter_json))).counts()
        assert _cohort(index, filter_json).counts() == expected, filter_json
        assert _method(index, filter_json) == "levels"
    first = _level_names(index)

    # TCIA re-harvested with another overlap: new level indices, the old ones gone.
    write(tmp_path, "tcia", as_source(kits.slice(100, 150), "tcia", modality="MR"))
    assert publish(index, tmp_path, PRIORITIES) == ["tcia"]
    assert_same(embedded(tmp_path, PRIORITIES), index)
    second = _level_names(index)
    assert not set(first) & set(second) and _all_levels(index) == second

    # Priorities alone change: rebuilt too (the winners' values are what the levels hold).
    flipped = {"idc": 90, "tcia": 50}
    assert publish(index, tmp_path, flipped) == []
    assert_same(embedded(tmp_path, flipped), index)
    assert _level_names(index) != second and _method(index, {"=": {"modality": "MR"}}) == "levels"

    # Nothing changed: nothing rebuilt.
    third = _level_names(index)
    publish(index, tmp_path, flipped)
    assert _level_names(index) == third


def test_a_publish_killed_before_the_level_swap_counts_by_composite_until_the_next(
    kits: pa.Table, tmp_path: Path, make_elastic: Callable[..., ElasticIndex],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """The series indices moved on, the level indices did not: they no longer answer for
    what is served, so counts take the composite way (still exact); a level index left
    half-built is deleted by the next publish, which swaps new ones in."""
    _two_sources(kits, tmp_path)
    index = make_elastic()
    publish(index, tmp_path, PRIORITIES)
    before = _level_names(index)
    write(tmp_path, "tcia", as_source(kits.slice(0, 80), "tcia", modality="MR"))

    class Killed(Exception):
        pass

    real_build = LevelPublisher._build

    async def dies_after_one_level(
        self: LevelPublisher, corpus: Any, level: str, wanted: Any
    ) -> str:
        if level == LEVELS[-1]:
            raise Killed("harvest killed half-way through the levels")
        return await real_build(self, corpus, level, wanted)

    async def no_delete(self: LevelPublisher, names: list[str]) -> None:
        return None

    with monkeypatch.context() as patched:
        patched.setattr(LevelPublisher, "_build", dies_after_one_level)
        patched.setattr(LevelPublisher, "_delete", no_delete)  # killed outright: no cleanup
        with pytest.raises(Killed):
            publish(index, tmp_path, PRIORITIES)
    assert _level_names(index) == before  # still behind the aliases...
    assert len(_all_levels(index)) == len(LEVELS) + 1  # ...beside a half-built one
    reference = embedded(tmp_path, PRIORITIES)
    for filter_json in FILTERS:
        expected = reference.cohort(CohortQuery(parse_filter(filter_json))).counts()
        assert _cohort(index, filter_json).counts() == expected, filter_json
        assert _method(index, filter_json) == "composite"

    assert publish(index, tmp_path, PRIORITIES) == []  # series are current; levels are not
    assert _all_levels(index) == _level_names(index) and not set(before) & set(_all_levels(index))
    assert_same(reference, index)
    assert all(_method(index, f) == "levels" for f in FILTERS)


def test_every_index_takes_shards_replicas_and_mapping_from_the_templates(
    kits: pa.Table, tmp_path: Path, make_elastic: Callable[..., ElasticIndex],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """Level indices included: no refreshes while they load (restored after), and a 429
    from the cluster during their load is retried, not lost."""
    monkeypatch.setattr(bulk, "BACKOFF_S", 0.01)
    during: dict[str, str] = {}
    refused: list[int] = []
    real_load, real_post = BulkWriter.load, BulkWriter._post

    async def watched_load(self: BulkWriter, *args: Any, **kw: Any) -> int:
        name = self.path.strip("/").split("/")[0]
        answer = await self.client.indices.get_settings(index=name)
        during[name] = answer.body[name]["settings"]["index"]["refresh_interval"]
        return await real_load(self, *args, **kw)

    async def busy_post(self: BulkWriter, lines: list[Line]) -> list[dict[str, Any]]:
        if "-level-" not in self.path or len(refused) >= 2 or len(lines) < 2:
            return await real_post(self, lines)
        half = len(lines) // 2  # the node takes half the chunk and refuses the rest
        refused.append(len(lines) - half)
        items = await real_post(self, lines[:half])
        return items + [{"status": 429, "_id": "x"}] * (len(lines) - half)

    monkeypatch.setattr(BulkWriter, "load", watched_load)
    monkeypatch.setattr(BulkWriter, "_post", busy_post)
    _two_sources(kits, tmp_path)
    index = make_elastic(shards=2, bulk_chunk_docs=50)
    publish(index, tmp_path, PRIORITIES)
    assert len(refused) == 2
    assert_same(embedded(tmp_path, PRIORITIES), index)  # nothing refused was lost

    settings = _settings(index)
    kinds = {info.name: info.kind for info in _infos(index)}
    assert sorted(set(kinds.values())) == ["empty", "harvest", "level"]
    for name, kind in kinds.items():
        assert settings[name]["number_of_shards"] == "2", name
        assert settings[name]["number_of_replicas"] == str(index.settings.replicas), name
        assert settings[name]["refresh_interval"] == "1s", name
        if kind != "empty":
            assert during[name] == "-1", name
    mappings = index.runner.run(_mappings(index))
    for name, kind in kinds.items():
        props = mappings[name]["mappings"]["properties"]
        if kind == "level":
            assert (
                props["series"]["type"] == "nested" and "modality" in props["series"]["properties"]
            )
        else:
            assert props["modality"]["type"] == "keyword" and "series" not in props


def _infos(index: ElasticIndex) -> list[Any]:
    async def infos() -> list[Any]:
        return await index.layout.indices(await index.client())

    return index.runner.run(infos())


def _all_levels(index: ElasticIndex) -> list[str]:
    return sorted(i.name for i in _infos(index) if i.kind == "level")


def _level_names(index: ElasticIndex) -> list[str]:
    return sorted(i.name for i in index.layout.served_levels(_infos(index)))


def _settings(index: ElasticIndex) -> dict[str, dict[str, str]]:
    async def read() -> dict[str, dict[str, str]]:
        client = await index.client()
        answer = await client.indices.get_settings(index=f"{index.layout.prefix}-*")
        return {name: body["settings"]["index"] for name, body in answer.body.items()}

    return index.runner.run(read())


async def _mappings(index: ElasticIndex) -> dict[str, Any]:
    client = await index.client()
    answer = await client.indices.get_mapping(index=f"{index.layout.prefix}-*")
    found: dict[str, Any] = answer.body
    return found


def test_the_publisher_writes_templates_before_any_index(
    tmp_path: Path, make_elastic: Callable[..., ElasticIndex]
) -> None:
    """An empty configuration still gets the templates (a live index created later takes
    its mapping from them), and empty level indices that count zero."""
    index = make_elastic()
    assert publish(index, tmp_path, {}) == []
    assert _level_names(index) and _method(index, None) == "levels"
    assert _cohort(index, None).counts().series == 0

    async def names() -> list[str]:
        client = await index.client()
        answer = await client.indices.get_index_template(name=f"{index.layout.prefix}-*")
        return sorted(t["name"] for t in answer.body["index_templates"])

    prefix = index.layout.prefix
    expected = [f"{prefix}-{k}" for k in ("level-patients", "level-studies", "live", "series")]
    assert index.runner.run(names()) == expected
