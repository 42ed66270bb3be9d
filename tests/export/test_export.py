"""Exports over a real index: the embedded parquet route gives exactly what the
protocol's default (paging the cohort) gives, mirrored series land in every
repository's manifest, live rows are included, and records arrive in bounded chunks."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from hub.export import prepare_export
from hub.export.records import record_chunks
from hub.index.embedded.cohort import EmbeddedCohort
from hub.index.embedded.records import corpus_file
from hub.index.protocol import CohortView
from hub.service import Hub
from tests.conftest import hub_config
from tests.export.conftest import MIRRORED, TCIA_ONLY

KITS = {"=": {"collection": "c4kc_kits"}}


@pytest.fixture(scope="module")
def hub(data_dir: Path) -> Iterator[Hub]:
    hub = Hub(hub_config(data_dir))
    yield hub
    asyncio.run(hub.aclose())


def _view(hub: Hub, filter_json: object, text: str | None = None) -> EmbeddedCohort:
    view = hub.cohort(filter_json, text).view
    assert isinstance(view, EmbeddedCohort) and corpus_file(view.gen) is not None
    return view


@pytest.mark.parametrize(
    ("filter_json", "text"),
    [
        ({"AND": [{"IN": {"modality": ["CT", "MR"]}}, {">=": {"age": 50}}]}, None),
        ({"is_missing": {"body_part": True}}, None),
        ({"=": {"sex": "male"}}, "contrast"),
    ],
)
def test_parquet_route_equals_paging_the_cohort(
    hub: Hub, filter_json: object, text: str | None
) -> None:
    view = _view(hub, filter_json, text)
    fast = [r for chunk in record_chunks(view) for r in chunk]
    paged = {r["series_uid"]: r for chunk in CohortView.record_chunks(view, None) for r in chunk}
    assert len(fast) == view.counts().series == len(paged) > 100
    assert all(r == paged[r["series_uid"]] for r in fast)
    assert fast[0]["study_date"] is None or len(fast[0]["study_date"]) == 10


def test_corpus_rows_are_in_row_order(hub: Hub) -> None:
    view = _view(hub, {})
    table = pq.read_table(corpus_file(view.gen), columns=["row", "series_uid"])  # type: ignore[arg-type]
    assert table["row"].to_pylist() == list(range(view.gen.base_columns.rows))


def test_chunks_are_bounded_and_limit_counts(hub: Hub) -> None:
    view = _view(hub, {"=": {"modality": "SM"}})
    sizes = [len(c) for c in record_chunks(view, chunk_rows=700)]
    assert max(sizes) <= 700 and len(sizes) >= 10 and sum(sizes) == view.counts().series
    assert sum(len(c) for c in record_chunks(view, limit=1234, chunk_rows=500)) == 1234
    assert sum(len(c) for c in CohortView.record_chunks(view, 1234)) == 1234


def test_ndjson_export_lists_the_cohort(hub: Hub) -> None:
    export = prepare_export(hub, "ndjson", KITS, limit=None)
    lines = "".join(export.text()).splitlines()
    first = hub.cohort(KITS, None).view.series(5, None, [])
    assert len(lines) == export.total == first.total == export.tally.written
    assert [json.loads(x)["series_uid"] for x in lines[:5]] == [
        n["series_uid"] for n in first.nodes
    ]
    assert export.filename.startswith("cohort-") and export.filename.endswith(".ndjson")


def test_mirrored_series_are_in_each_repositorys_manifest(two_repo_hub: Hub) -> None:
    view = two_repo_hub.cohort(KITS, None).view
    by_source = view.by_source()
    assert by_source["tcia"] == MIRRORED + TCIA_ONLY
    s5cmd = prepare_export(two_repo_hub, "s5cmd", KITS)
    lines = "".join(s5cmd.text()).splitlines()
    # the mirrored series' merged download_url is TCIA's; the IDC manifest still has them
    assert len(lines) == by_source["idc"] == s5cmd.tally.written
    assert all(line.startswith("cp s3://") and line.endswith("/* .") for line in lines)
    assert s5cmd.tally.skipped == TCIA_ONLY
    tcia = prepare_export(two_repo_hub, "tcia", KITS)
    uids = "".join(tcia.text()).split("ListOfSeriesToDownload=\n", 1)[1].splitlines()
    assert len(uids) == MIRRORED + TCIA_ONLY and sum(u.endswith(".77") for u in uids) == TCIA_ONLY


def test_live_rows_and_live_sources_are_exported(data_dir: Path, tmp_path: Path) -> None:
    import shutil

    from tests.export.conftest import tcia_copy

    copy = tmp_path / "hub"
    shutil.copytree(data_dir, copy)
    hub = Hub(hub_config(copy))
    try:
        snapshot = hub.snapshots.get("idc")
        assert snapshot is not None
        answer = tcia_copy(pq.read_table(snapshot.path))
        hub.index.add_live("tcia", answer.to_batches(), ttl_s=300)
        view = _view(hub, KITS)
        records = [r for chunk in record_chunks(view) for r in chunk]
        assert len(records) == view.counts().series
        live_only = [r for r in records if r["series_uid"].endswith(".77")]
        shared = [r for r in records if r["sources"] == ["idc", "tcia"]]
        assert len(live_only) == TCIA_ONLY and len(shared) == MIRRORED
        assert {loc["source"] for loc in shared[0]["locations"]} == {"idc", "tcia"}
        assert live_only[0]["locations"][0]["url"].startswith("https://nbia.example/")
    finally:
        asyncio.run(hub.aclose())


def test_manifest_columns_give_the_same_manifest(hub: Hub) -> None:
    from hub.export.records import MANIFEST_COLUMNS
    from hub.export.writers import Tally, s5cmd_text

    view = _view(hub, {"=": {"modality": "SEG"}})
    export = prepare_export(hub, "s5cmd", {"=": {"modality": "SEG"}})
    narrow = next(iter(record_chunks(view, columns=MANIFEST_COLUMNS)))[0]
    assert set(narrow) == set(MANIFEST_COLUMNS) - {"row"}
    whole = "".join(s5cmd_text(record_chunks(view), export.repositories, Tally()))
    assert "".join(export.text()) == whole and whole.count("\n") == view.counts().series
