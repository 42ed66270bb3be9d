"""Counts across IDC (harvested), a real Orthanc (live DICOMweb) and TCIA (live, respx)
equal the de-duplicated ground truth.

The TCIA fixture rows are real TCIA series that IDC mirrors, so many of them are already
in the harvested index: each must count once and list both sources. Ground truth is
computed here from the three inputs directly: IDC's snapshot parquet, the TCIA fixture
rows and the series written into Orthanc.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import respx

from adapters.spi import SourceSettings
from hub.config import HubConfig, HubSettings
from hub.index.snapshots import SnapshotStore
from hub.service import Hub
from schema.normalize import normalize_collection
from tests.dicomweb.generate import SERIES
from tests.tcia.fake_nbia import BASE, FakeNbia, load

ORTHANC_COLLECTION = "orthanc_demo"


@pytest.fixture()
def hub(orthanc: str, small_data_dir: Path, tmp_path: Path) -> Iterator[Hub]:
    data_dir = tmp_path / "hub"
    shutil.copytree(small_data_dir, data_dir)
    sources = {
        "idc": SourceSettings(name="idc", adapter="idc"),
        "orthanc": SourceSettings(
            name="orthanc",
            adapter="dicomweb",
            mode="live",
            url=orthanc,
            collection=ORTHANC_COLLECTION,
            cache_ttl_s=0,
        ),
        "tcia": SourceSettings(name="tcia", adapter="tcia", mode="live", url=BASE, cache_ttl_s=0),
    }
    hub = Hub(HubConfig(hub=HubSettings(data_dir=data_dir), sources=sources))
    with respx.mock(assert_all_called=False) as router:
        router.route(host="127.0.0.1").pass_through()
        router.route(url__startswith=BASE).mock(side_effect=FakeNbia())
        yield hub
    asyncio.run(hub.aclose())


def _ground_truth(data_dir: Path) -> dict[str, Any]:
    snapshot = SnapshotStore(data_dir).get("idc")
    assert snapshot is not None
    idc = pq.read_table(
        snapshot.path, columns=["collection", "patient_id", "study_uid", "series_uid"]
    )
    rows = [
        (r["collection"], r["patient_id"], r["study_uid"], r["series_uid"]) for r in idc.to_pylist()
    ]
    tcia = [
        (
            normalize_collection(r["Collection"]),
            r["PatientID"],
            r["StudyInstanceUID"],
            r["SeriesInstanceUID"],
        )
        for r in load("getSeries.json")
    ]
    orthanc = [(ORTHANC_COLLECTION, s.patient_id, s.study_uid, s.series_uid) for s in SERIES]
    idc_series = {r[3] for r in rows}
    every = rows + tcia + orthanc
    return {
        "series": len({r[3] for r in every}),
        "studies": len({r[2] for r in every}),
        "patients": len({(r[0], r[1]) for r in every}),
        "shared_with_idc": len({r[3] for r in tcia} & idc_series),
        "tcia": len({r[3] for r in tcia}),
        "orthanc": len({r[3] for r in orthanc}),
    }


def test_counts_equal_the_deduplicated_ground_truth(hub: Hub) -> None:
    truth = _ground_truth(hub.data_dir)
    assert truth["shared_with_idc"] > 0, "the fixture must share series with IDC"
    cohort = hub.cohort(None, None)
    counts = cohort.view.counts()
    assert (counts.series, counts.studies, counts.patients) == (
        truth["series"],
        truth["studies"],
        truth["patients"],
    )
    results = {r.source: r for r in hub.by_source(cohort)}
    assert {s: r.status for s, r in results.items()} == {"idc": "ok", "orthanc": "ok", "tcia": "ok"}
    assert results["tcia"].count == truth["tcia"]
    assert results["orthanc"].count == truth["orthanc"]

    shared = hub.cohort({"AND": [{"=": {"source": "tcia"}}, {"=": {"source": "idc"}}]}, None)
    assert shared.view.counts().series == truth["shared_with_idc"]
    page = shared.view.series(1000, None, []).nodes
    assert all(n["sources"] == ["idc", "tcia"] for n in page)
