"""The DICOMweb adapter against a real Orthanc: filters, paging, harvest, normalisation.

Expected answers come from `generate.SERIES` (the raw values written into the files),
normalised by schema.normalize and filtered by schema.evaluate, never from the adapter.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import httpx
import pytest

from adapters.batch import to_records
from adapters.dicomweb import QIDO_KEYS, DicomwebAdapter
from adapters.spi import Page, SourceSettings
from schema.evaluate import matches
from schema.filters import MATCH_ALL, Node, parse_filter
from tests.dicomweb.generate import SERIES, expected_record

CONFIGS: dict[str, dict[str, Any]] = {
    "default": {},
    "all-keys": {"match_keys": sorted(QIDO_KEYS)},
    "no-lists": {"list_matching": False},
    "no-pushdown": {"match_keys": []},
    "join-studies": {"join_studies": "always"},
}
P07 = [s.series_uid for s in SERIES if s.patient_id == "P-07"]
FILTERS: dict[str, Any] = {
    "modality =": {"=": {"modality": "CT"}},
    "modality IN": {"IN": {"modality": ["MR", "PT"]}},
    "modality lower case": {"=": {"modality": "ct"}},
    "body_part =": {"=": {"body_part": "CHEST"}},
    "sex =": {"=": {"sex": "female"}},
    "sex != unknown": {"!=": {"sex": "unknown"}},
    "age range": {"AND": [{">=": {"age": 18}}, {"<=": {"age": 60}}]},
    "age < 1": {"<": {"age": 1}},
    "study_date 2021": {
        "AND": [{">=": {"study_date": "2021-01-01"}}, {"<=": {"study_date": "2021-12-31"}}]
    },
    "study_date > exclusive": {">": {"study_date": "2021-12-31"}},
    "study_date < exclusive": {"<": {"study_date": "2020-01-01"}},
    "study_date =": {"=": {"study_date": "2020-01-01"}},
    "study_date empty range": {
        "AND": [{">": {"study_date": "2022-01-01"}}, {"<": {"study_date": "2021-01-01"}}]
    },
    "patient_id case": {"=": {"patient_id": "P-07"}},
    "patient_id wildcard": {"=": {"patient_id": "P*1"}},
    "patient_id space": {"=": {"patient_id": "ANON 12"}},
    "body_part missing": {"is_missing": {"body_part": True}},
    "OR": {"OR": [{"=": {"modality": "CR"}}, {"=": {"sex": "other"}}]},
    "EXCLUDES": {"EXCLUDES": {"modality": ["CT", "MR"]}},
    "manufacturer": {"IN": {"manufacturer": ["SIEMENS", "GE MEDICAL SYSTEMS"]}},
    "CT chest, sex known": {
        "AND": [
            {"=": {"modality": "CT"}},
            {"=": {"body_part": "CHEST"}},
            {"!=": {"sex": "unknown"}},
        ]
    },
    "two modalities": {"AND": [{"=": {"modality": "CT"}}, {"=": {"modality": "MR"}}]},
    "uids": {
        "AND": [
            {"IN": {"study_uid": sorted({s.study_uid for s in SERIES[:6]})}},
            {"!=": {"series_uid": SERIES[0].series_uid}},
        ]
    },
    "series IN": {"IN": {"series_uid": P07}},
    "series IN one": {"IN": {"series_uid": P07[:1]}},
    "text": {"search": {"keyword": "chest", "fields": ["study_description"]}},
    "nested": {
        "AND": [
            {"AND": [{"IN": {"modality": ["CT", "CR"]}}, {">=": {"study_date": "2020-01-01"}}]},
            {"OR": [{"=": {"body_part": "CHEST"}}, {"<": {"age": 1}}]},
        ]
    },
}
FILTERS_PARSED = {name: parse_filter(f) for name, f in FILTERS.items()}


def adapter(url: str, **options: Any) -> DicomwebAdapter:
    return DicomwebAdapter(SourceSettings(name="orthanc", adapter="dicomweb", url=url, **options))


def expected(node: Node) -> set[str]:
    records = [expected_record(s, "orthanc", "orthanc") for s in SERIES]
    return {r["series_uid"] for r in records if matches(node, r)}


async def fetch_all(source: DicomwebAdapter, node: Node, size: int = 1000) -> list[dict[str, Any]]:
    """What the hub does: translate, walk the pages, apply the residual."""
    translation = source.translate(node)
    rows: list[dict[str, Any]] = []
    page: Page | None = Page(size=size)
    try:
        while page is not None:
            answer = await source.search(translation, page)
            rows += [r for b in answer.batches for r in b.to_pylist()]
            page = answer.next_page
    finally:
        await source.aclose()
    residual = translation.residual
    return [r for r in rows if residual is None or matches(residual, r)]


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("name", FILTERS)
def test_filter_matches_reference(orthanc: str, config: str, name: str) -> None:
    node = parse_filter(FILTERS[name])
    rows = asyncio.run(fetch_all(adapter(orthanc, **CONFIGS[config]), node, size=10))
    uids = [r["series_uid"] for r in rows]
    assert len(uids) == len(set(uids))
    assert set(uids) == expected(node)


def test_pushdown_and_residual(orthanc: str) -> None:
    source = adapter(orthanc)
    exact = source.translate(parse_filter({"IN": {"modality": ["MR", "PT"]}}))
    assert exact.native["params"]["Modality"] == "MR,PT" and exact.residual is None
    date = source.translate(parse_filter({">": {"study_date": "2021-12-31"}}))
    assert date.native["params"]["StudyDate"] == "20220101-"
    assert date.residual == parse_filter({">": {"study_date": "2021-12-31"}})  # re-checked
    for unsafe in ("P*1", "ANON 12", "A,B", "A\\B"):
        plan = source.translate(parse_filter({"=": {"patient_id": unsafe}}))
        assert "PatientID" not in plan.native["params"]
    both = source.translate(parse_filter(FILTERS["CT chest, sex known"]))
    assert both.native["params"]["Modality"] == "CT"
    assert "BodyPartExamined" not in both.native["params"]  # residual by default
    assert "the hub applies" in both.description and "Modality=CT" in both.description
    either = source.translate(parse_filter(FILTERS["OR"]))
    assert set(either.native["params"]) == {"includefield"}
    many = [f"1.2.3.{i}" for i in range(500)]  # a URL too long for most servers
    assert source.translate(parse_filter({"IN": {"series_uid": many}})).residual is not None
    single = adapter(orthanc, list_matching=False).translate(FILTERS_PARSED["series IN one"])
    assert single.residual is None and "SeriesInstanceUID" in single.native["params"]


def test_pushdown_is_done_by_the_server(orthanc: str) -> None:
    """The server filters: far fewer rows arrive than the archive holds."""

    async def raw_rows() -> int:
        source = adapter(orthanc)
        translation = source.translate(parse_filter({"=": {"modality": "PT"}}))
        try:
            answer = await source.search(translation, Page(size=100))
            return sum(b.num_rows for b in answer.batches)
        finally:
            await source.aclose()

    assert asyncio.run(raw_rows()) == len(expected(parse_filter({"=": {"modality": "PT"}})))


@pytest.mark.parametrize("size", [1, 4, 7, 1000])
def test_paging_returns_every_series_once(orthanc: str, size: int) -> None:
    rows = asyncio.run(fetch_all(adapter(orthanc), MATCH_ALL, size=size))
    uids = [r["series_uid"] for r in rows]
    assert sorted(uids) == sorted(s.series_uid for s in SERIES)


def test_page_size_option_caps_each_request(orthanc: str) -> None:
    source = adapter(orthanc, page_size=5)
    assert source.capabilities.max_page_size == 5
    rows = asyncio.run(fetch_all(source, parse_filter({"=": {"modality": "CT"}}), size=1000))
    assert {r["series_uid"] for r in rows} == expected(parse_filter({"=": {"modality": "CT"}}))


async def harvest(source: DicomwebAdapter) -> list[dict[str, Any]]:
    try:
        return [r.model_dump() for b in [b async for b in source.harvest()] for r in to_records(b)]
    finally:
        await source.aclose()


@pytest.mark.parametrize("join", ["auto", "always"])
def test_harvest_returns_every_series_normalised(orthanc: str, join: str) -> None:
    source = adapter(orthanc, page_size=6, join_studies=join, collection="Test Orthanc!")
    records = asyncio.run(harvest(source))
    assert len(records) == len(SERIES) == len({r["series_uid"] for r in records})
    by_uid = {r["series_uid"]: r for r in records}
    for spec in SERIES:
        want = expected_record(spec, "orthanc", "test_orthanc")
        got = by_uid[spec.series_uid]
        assert {k: got[k] for k in want} == want, spec.series_uid
        assert got["sources"] == ["orthanc"] and got["license"] is None
        assert got["download_url"] == f"{orthanc}/studies/{spec.study_uid}/series/{spec.series_uid}"


def test_normalisation_of_messy_values(orthanc: str) -> None:
    records = asyncio.run(harvest(adapter(orthanc, license="CC BY 4.0")))
    by_patient: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        by_patient.setdefault(r["patient_id"], []).append(r)
    lower = next(s for s in SERIES if s.body_part == "chest")
    assert next(r for r in records if r["series_uid"] == lower.series_uid)["body_part"] == "CHEST"
    assert {r["age"] for r in by_patient["P03"]} == {1}  # 018M
    assert {r["age"] for r in by_patient["P04"]} == {0}  # 003W
    assert {r["sex"] for r in by_patient["P04"]} == {"unknown"}  # PatientSex absent
    assert {r["sex"] for r in by_patient["p-07"]} == {"female"}  # 'f'
    impossible = [r for r in by_patient["P04"] if r["study_description"].startswith("Follow")]
    assert [r["study_date"] for r in impossible] == [None]  # 20210230
    assert {r["study_date"] for r in by_patient["P02"]} == {
        dt.date(2020, 1, 1),
        dt.date(2020, 12, 31),
    }
    assert {r["license"] for r in records} == {"CC BY 4.0"}


def test_download_url_is_a_working_wado_rs_series(orthanc: str) -> None:
    records = asyncio.run(harvest(adapter(orthanc, viewer_url="https://v.test/{study_uid}")))
    record = next(r for r in records if r["instance_count"] == 3)
    answer = httpx.get(f"{record['download_url']}/metadata", timeout=10)
    assert answer.status_code == 200 and len(answer.json()) == 3
    assert record["viewer_url"] == f"https://v.test/{record['study_uid']}"


@pytest.mark.parametrize(
    "query",
    [
        {"=": {"patient_id": "P-07"}},
        {"=": {"patient_id": "p-07"}},
        {"IN": {"manufacturer": ["SIEMENS", "Philips"]}},
        {"AND": [{">=": {"study_date": "2021-01-01"}}, {"<=": {"study_date": "2021-12-31"}}]},
        {">": {"study_date": "2020-12-31"}},
    ],
)
def test_rechecked_prefilters_return_a_superset(orthanc: str, query: Any) -> None:
    """What re-checking relies on: the server may return too much (Orthanc ignores case
    and compares date strings, so 20210230 is in 2021) but never too little."""
    source = adapter(orthanc, match_keys=sorted(QIDO_KEYS))
    translation = source.translate(parse_filter(query))
    assert set(translation.native["params"]) > {"includefield"}  # something was sent
    assert translation.residual is not None

    async def raw() -> set[str]:
        try:
            batches = (await source.search(translation, Page(size=100))).batches
            return {r["series_uid"] for b in batches for r in b.to_pylist()}
        finally:
            await source.aclose()

    assert asyncio.run(raw()) >= expected(parse_filter(query))
