"""The TCIA adapter against a stand-in NBIA v4 (respx) serving real-shaped fixture rows.

Translation must produce the exact getSeries parameter sets (IN and OR become several
requests, collections are resolved to NBIA's own names) and leave the rest residual; the
requests answered like NBIA answers them plus the residual must select exactly what the
reference evaluator selects; an empty body is no results, a 400 is terminal.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import respx

import adapters.tcia
from adapters.registry import discover_adapters
from adapters.spi import Page, SourceSettings, TerminalSourceError, TransientSourceError
from adapters.tcia import TciaAdapter
from schema.evaluate import matches
from schema.filters import MATCH_ALL, parse_filter, to_json
from tests.tcia.fake_nbia import BASE, KNOWN, FakeNbia, load

Record = dict[str, Any]


def tcia(**options: Any) -> TciaAdapter:
    return TciaAdapter(SourceSettings(name="tcia", adapter="tcia", **options))


@pytest.fixture
def nbia() -> Iterator[FakeNbia]:
    fake = FakeNbia()
    with respx.mock(assert_all_called=False) as router:
        router.get(url__startswith=BASE).mock(side_effect=fake)
        yield fake


async def _collect(source: TciaAdapter, node: Any) -> list[Record]:
    try:
        translation = source.translate(node)
        page = Page(size=1000)
        answer = await source.search(translation, page)
        assert answer.next_page is None  # NBIA does not page
        return [r for b in answer.batches for r in b.to_pylist()]
    finally:
        await source.aclose()


def search(node: Any, source: TciaAdapter | None = None) -> list[Record]:
    return asyncio.run(_collect(source or tcia(), node))


async def _harvest(source: TciaAdapter) -> list[Record]:
    try:
        return [r async for b in source.harvest() for r in b.to_pylist()]
    finally:
        await source.aclose()


# -- translation ------------------------------------------------------------------------


def req(collection: str | None = None, **params: str) -> dict[str, Any]:
    return {"collection": collection, "params": params}


@pytest.mark.parametrize(
    ("query", "requests", "residual"),
    [
        (
            {"AND": [{"=": {"collection": "lidc_idri"}}, {"=": {"modality": "CT"}}]},
            [req("lidc_idri", Modality="CT")],
            None,
        ),
        ({"IN": {"modality": ["CT", "MR"]}}, [req(Modality="CT"), req(Modality="MR")], None),
        (
            {
                "AND": [
                    {"IN": {"collection": ["lidc_idri", "tcga_luad"]}},
                    {"=": {"sex": "female"}},
                    {">=": {"age": 50}},
                ]
            },
            [req("lidc_idri"), req("tcga_luad")],
            {"AND": [{"=": {"sex": "female"}}, {">=": {"age": 50}}]},
        ),
        (  # a manufacturer is pushed, then re-checked: NBIA may ignore case, the record does not
            {"OR": [{"=": {"body_part": "CHEST"}}, {"=": {"manufacturer": "SIEMENS"}}]},
            [req(BodyPartExamined="CHEST"), req(Manufacturer="SIEMENS")],
            {"OR": [{"=": {"body_part": "CHEST"}}, {"=": {"manufacturer": "SIEMENS"}}]},
        ),
        (  # DateRangeCriteria is a release date: study dates stay residual
            {">=": {"study_date": "2000-01-01"}},
            [req()],
            {">=": {"study_date": "2000-01-01"}},
        ),
        ({"AND": [{"=": {"modality": "CT"}}, {"=": {"modality": "MR"}}]}, [], None),
        ({"=": {"collection": "LIDC-IDRI"}}, [req()], {"=": {"collection": "LIDC-IDRI"}}),
        ({"=": {"modality": "ct"}}, [req()], {"=": {"modality": "ct"}}),
        (
            {
                "AND": [
                    {"IN": {"modality": ["CT", "PT"]}},
                    {"IN": {"body_part": ["CHEST", "LUNG"]}},
                    {"=": {"patient_id": "TCGA-17-Z027"}},
                    {"!=": {"sex": "male"}},
                ]
            },
            [
                req(**{"Modality": m, "BodyPartExamined": b, "PatientID": "TCGA-17-Z027"})
                for m in ("CT", "PT")
                for b in ("CHEST", "LUNG")
            ],
            {"AND": [{"=": {"patient_id": "TCGA-17-Z027"}}, {"!=": {"sex": "male"}}]},
        ),
    ],
)
def test_translation(query: Any, requests: list[dict[str, Any]], residual: Any) -> None:
    t = tcia().translate(parse_filter(query))
    assert t.native == {"endpoint": "getSeries", "requests": requests}
    assert (to_json(t.residual) if t.residual else None) == residual


def test_too_many_requests_leave_the_widest_part_residual() -> None:
    uids = [f"1.2.3.{i}" for i in range(300)]
    query = {"AND": [{"IN": {"series_uid": uids}}, {"=": {"modality": "CT"}}]}
    t = tcia().translate(parse_filter(query))
    assert t.native["requests"] == [req(Modality="CT")]
    assert to_json(t.residual) == {"IN": {"series_uid": uids}}  # type: ignore[arg-type]


def test_description_names_the_requests() -> None:
    node = parse_filter({"AND": [{"=": {"collection": "lidc_idri"}}, {"=": {"sex": "female"}}]})
    text = tcia().translate(node).description
    assert text.startswith("NBIA getSeries ?Collection=<lidc_idri>")
    assert 'the hub applies {"=": {"sex": "female"}}'.replace('"', "'") in text
    assert tcia().translate(MATCH_ALL).description == "NBIA getSeries for every collection"


# -- selection correctness --------------------------------------------------------------

FILTERS = [
    {"AND": [{"=": {"collection": "lidc_idri"}}, {"=": {"modality": "CT"}}]},
    {"IN": {"modality": ["CT", "PT"]}},
    {
        "AND": [
            {"IN": {"collection": ["acrin_nsclc_fdg_pet", "tcga_luad"]}},
            {"=": {"sex": "female"}},
        ]
    },
    {"AND": [{">=": {"age": 60}}, {"<=": {"age": 80}}]},
    {"OR": [{"=": {"body_part": "CHEST"}}, {"=": {"manufacturer": "Philips Medical Systems"}}]},
    {"=": {"manufacturer": "siemens"}},  # NBIA would match SIEMENS; the record keeps its case
    {"AND": [{"=": {"patient_id": "lidc-idri-0002"}}]},
    {">=": {"study_date": "1983-01-01"}},
    {"AND": [{"=": {"patient_id": "ACRIN-NSCLC-FDG-PET-048"}}, {"!=": {"modality": "CT"}}]},
    {"is_missing": {"body_part": True}},
    {"=": {"sex": "other"}},
    {
        "AND": [
            {"IN": {"collection": ["lidc_idri", "no_such_collection"]}},
            {"EXCLUDES": {"modality": ["SEG", "SR"]}},
        ]
    },
    {"=": {"collection": "cptac_ccrcc"}},  # listed by getCollectionValues, no series: empty body
    {"search": {"keyword": "chest", "fields": ["study_description"]}},
    {"AND": [{"IN": {"license": ["CC BY 3.0"]}}, {"=": {"modality": "PT"}}]},
]


def test_pushdown_plus_residual_selects_what_the_reference_selects(nbia: FakeNbia) -> None:
    everything = asyncio.run(_harvest(tcia()))
    assert len(everything) == len(load("getSeries.json")) == 34
    sizes = []
    for query in FILTERS:
        node = parse_filter(query)
        source = tcia()
        residual = source.translate(node).residual
        fetched = search(node, source)
        got = sorted(r["series_uid"] for r in fetched if residual is None or matches(residual, r))
        expected = sorted(r["series_uid"] for r in everything if matches(node, r))
        assert got == expected, query
        sizes.append(len(expected))
    assert sum(1 for n in sizes if 0 < n < len(everything)) >= 9


def test_records_are_canonical(nbia: FakeNbia) -> None:
    records = {r["series_uid"]: r for r in asyncio.run(_harvest(tcia()))}
    raw = {r["SeriesInstanceUID"]: r for r in load("getSeries.json")}
    for uid, record in records.items():
        assert record["instance_count"] == raw[uid]["ImageCount"]
        assert record["size_bytes"] == raw[uid]["FileSize"]
        assert record["download_url"] == f"{BASE}/getImage?SeriesInstanceUID={uid}"
        assert record["viewer_url"] == f"https://nbia.cancerimagingarchive.net/viewer/?series={uid}"
        assert record["license"] in ("CC BY 3.0", "CC BY 4.0")
    by_patient = {r["patient_id"]: r for r in records.values()}
    acrin = by_patient["ACRIN-NSCLC-FDG-PET-015"]
    assert (acrin["collection"], acrin["sex"], acrin["age"]) == ("acrin_nsclc_fdg_pet", "other", 59)
    assert acrin["study_date"] == dt.date(1960, 2, 15) and acrin["body_part"] is None
    assert acrin["study_description"] == "Study De-Identified for Patient Confidentiality"
    luad = by_patient["TCGA-17-Z027"]
    assert (luad["collection"], luad["sex"], luad["age"], luad["body_part"]) == (
        "tcga_luad",
        "female",
        76,
        "CHEST",
    )
    lidc = by_patient["LIDC-IDRI-0002"]
    assert (lidc["collection"], lidc["sex"], lidc["age"]) == ("lidc_idri", "unknown", None)
    assert lidc["study_date"] == dt.date(2000, 1, 1)  # from "2000-01-01 00:00:00.0"


def test_patient_studies_are_batched_and_cached(
    nbia: FakeNbia, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def twice(source: TciaAdapter) -> None:
        try:
            for _ in range(2):
                t = source.translate(parse_filter({"=": {"collection": "acrin_nsclc_fdg_pet"}}))
                _ = await source.search(t, Page())
        finally:
            await source.aclose()

    asyncio.run(twice(tcia()))
    assert nbia.count("getCollectionValues") == 1 and nbia.count("getSeries") == 2
    studies = [p for e, p in nbia.calls if e == "getPatientStudy"]
    assert len(studies) == 3 and all(set(p) == {"Collection", "PatientID"} for p in studies)
    monkeypatch.setattr(adapters.tcia, "PATIENTS_PER_CALL", 2)  # 3 patients: ask per collection
    nbia.calls.clear()
    asyncio.run(twice(tcia()))
    studies = [p for e, p in nbia.calls if e == "getPatientStudy"]
    assert studies == [{"Collection": "ACRIN-NSCLC-FDG-PET"}]


def test_an_empty_body_is_no_results(nbia: FakeNbia) -> None:
    assert search(parse_filter({"=": {"modality": "MG"}})) == []
    assert ("getSeries", {"Modality": "MG"}) in nbia.calls


def _fails(response: httpx.Response) -> Exception:
    with respx.mock(assert_all_called=False) as router:
        router.get(f"{BASE}/getCollectionValues").mock(side_effect=FakeNbia())
        router.get(f"{BASE}/getSeries").mock(return_value=response)
        with pytest.raises((TerminalSourceError, TransientSourceError)) as info:
            search(parse_filter({"=": {"modality": "CT"}}))
    return info.value


def test_unknown_parameter_is_terminal_with_a_clear_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(KNOWN, "getSeries", KNOWN["getSeries"] - {"Modality"})  # an older NBIA
    with respx.mock() as router:
        router.get(url__startswith=BASE).mock(side_effect=FakeNbia())
        with pytest.raises(
            TerminalSourceError, match=r"HTTP 400: NBIA rejected the parameters \['Modality'\]"
        ):
            search(parse_filter({"=": {"modality": "CT"}}))


def test_http_failures_are_typed() -> None:
    busy = _fails(httpx.Response(429, headers={"Retry-After": "12"}))
    assert isinstance(busy, TransientSourceError) and busy.retry_after_s == 12.0
    assert isinstance(
        _fails(httpx.Response(500, text="Internal Server Error")), TransientSourceError
    )
    assert isinstance(_fails(httpx.Response(503)), TransientSourceError)
    broken = _fails(httpx.Response(200, text="<html><body>Error</body></html>"))
    assert isinstance(broken, TerminalSourceError) and "not valid JSON" in str(broken)
    assert "array" in str(_fails(httpx.Response(200, json={"error": "x"})))
    assert isinstance(_fails(httpx.Response(404, text="Not Found")), TerminalSourceError)


def test_found_through_the_entry_point() -> None:
    assert discover_adapters()["tcia"] is TciaAdapter
    assert tcia(url="https://nbia.cancerimagingarchive.net/nbia-api/services/v4/").base.endswith(
        "/v4"
    )
