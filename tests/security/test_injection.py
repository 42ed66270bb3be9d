"""Injection against every backend and adapter: values stay values (docs/security.md, "Injection").

Each hostile value of `payloads.PAYLOADS` goes, in several filter shapes, into:

- the embedded index: the tantivy query compiler and the numpy column masks, on the
  small real IDC corpus, compared row for row with the reference evaluator;
- the IDC adapter's DuckDB SQL, searched live over a small real parquet, compared with
  the evaluator, with the SQL text checked to hold only `?` placeholders;
- the HTTP adapters: Gen3 (GraphQL text identical to a benign value's, the value only in
  the JSON variables), TCIA and DICOMweb (the value only as one URL-encoded query
  parameter of the unchanged path, or not sent at all).

The Elasticsearch backend has the same checks in tests/elastic/test_injection.py (they
need that directory's server fixtures). A value the parser refuses is a FilterError.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import duckdb
import httpx
import pytest
import respx

from adapters.dicomweb import DicomwebAdapter
from adapters.gen3 import Gen3Adapter
from adapters.idc import IdcAdapter
from adapters.spi import Page, SourceSettings
from adapters.tcia import TciaAdapter
from hub.index.embedded.cohort import EmbeddedCohort
from hub.service import Hub
from schema.filters import And, FilterError, Node, Search, parse_filter
from schema.record import TEXT_FIELDS
from tests.reference import INDEX_PARQUET
from tests.security.grouped import GroupedReference, index_selection
from tests.security.payloads import PAYLOADS, REFUSED, payload_id

Record = dict[str, Any]
KITS = {"=": {"collection": "c4kc_kits"}}
IDS = [payload_id(p) for p in PAYLOADS]


def shapes(value: str) -> list[tuple[dict[str, Any] | None, str | None]]:
    """The filter shapes a value is tried in, with optional free text."""
    return [
        ({"=": {"modality": value}}, None),
        ({"!=": {"collection": value}}, None),
        ({"IN": {"study_description": [value, "CT ABDOMEN PELVIS"]}}, None),
        ({"EXCLUDES": {"patient_id": [value]}}, None),
        ({"OR": [{"=": {"series_description": value}}, KITS]}, None),
        ({"AND": [{"!=": {"license": value}}, {"IN": {"body_part": [value, "KIDNEY"]}}]}, None),
        ({"search": {"keyword": value}}, None),
        (KITS, value),
    ]


@pytest.mark.parametrize(("value", "words"), REFUSED, ids=[payload_id(v) for v, _ in REFUSED])
def test_the_parser_refuses_what_is_not_a_value(value: Any, words: str) -> None:
    with pytest.raises(FilterError) as caught:
        parse_filter({"AND": [{"=": {"modality": value}}]})
    assert caught.value.path == "$.AND[0].=.modality" and words in str(caught.value)


# --- the embedded index: tantivy and numpy ---------------------------------------------


def cohort_node(filter_json: Any, text: str | None) -> Node:
    """The filter with free text joined to it, as the index joins them."""
    node = parse_filter(filter_json)
    if text and text.strip():
        node = And((node, Search(text.strip(), TEXT_FIELDS)))
    return node


@pytest.mark.parametrize("value", PAYLOADS, ids=IDS)
def test_embedded_index_selects_what_the_evaluator_selects(
    small_hub: Hub, reference: GroupedReference, value: str
) -> None:
    for filter_json, text in shapes(value):
        view = small_hub.cohort(filter_json, text).view
        assert isinstance(view, EmbeddedCohort)
        expected = reference.uids(cohort_node(filter_json, text))
        tantivy_rows, numpy_rows, numpy_uids = index_selection(view)
        assert numpy_uids == expected, (filter_json, text)
        assert tantivy_rows == numpy_rows, (filter_json, text)
        assert view.counts().series == len(expected)


def test_embedded_index_answers_the_same_after_the_payloads(
    small_hub: Hub, reference: GroupedReference
) -> None:
    kits = reference.uids(parse_filter(KITS))
    assert small_hub.cohort(KITS, None).view.counts().series == len(kits) > 500
    assert small_hub.cohort({"=": {"modality": "' OR 1=1 --"}}, None).view.counts().series == 0


# --- DuckDB: the IDC adapter's live SQL ------------------------------------------------

SMALL = ["c4kc_kits", "rms_mutation_prediction", "icdc_glioma"]


@pytest.fixture(scope="module")
def idc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IdcAdapter]:
    path = tmp_path_factory.mktemp("idc-injection") / "idc_index.parquet"
    marks = ", ".join("?" for _ in SMALL)
    with duckdb.connect() as con:
        con.execute(
            f"COPY (SELECT * FROM read_parquet(?) WHERE collection_id IN ({marks}))"
            f" TO '{path}' (FORMAT parquet)",
            [str(INDEX_PARQUET), *SMALL],
        )
    settings = {"name": "idc", "adapter": "idc", "index_parquet": str(path)}
    adapter = IdcAdapter(SourceSettings.model_validate(settings))
    yield adapter
    asyncio.run(adapter.aclose())


async def _batches(answer: Any) -> list[Any]:
    """The batches of a harvest (an async iterator) or of one page's search (a PageResult)."""
    if hasattr(answer, "__aiter__"):
        return [batch async for batch in answer]
    return list((await answer).batches)


async def _uids(answer: Any) -> set[str]:
    batches = await _batches(answer)
    return {uid for batch in batches for uid in batch.column("series_uid").to_pylist()}


async def _collect(answer: Any) -> list[Record]:
    return [row for batch in await _batches(answer) for row in batch.to_pylist()]


@pytest.fixture(scope="module")
def idc_reference(idc: IdcAdapter) -> GroupedReference:
    return GroupedReference(asyncio.run(_collect(idc.harvest())))


@pytest.mark.parametrize("value", PAYLOADS, ids=IDS)
def test_duckdb_gets_values_only_as_parameters(
    idc: IdcAdapter, idc_reference: GroupedReference, value: str
) -> None:
    total = idc.estimated_total()
    for filter_json, text in shapes(value):
        if text is not None or "search" in json.dumps(filter_json):
            continue  # free text is the hub's (residual), never SQL
        translation = idc.translate(parse_filter(filter_json))
        sql, params = translation.native["sql"], translation.native["params"]
        assert value not in sql or value in ("%", "_", "*", "\\")  # SQL's own characters
        assert "'" not in sql.replace("''", "")  # no string literal at all
        assert sql.count("?") == len(params) and value in params
        found = asyncio.run(_uids(idc.search(translation, Page(size=100_000))))
        assert found == idc_reference.uids(parse_filter(filter_json))
    assert idc.estimated_total() == total  # the raw table is still there, unchanged


# --- HTTP adapters: Gen3 GraphQL variables, TCIA and DICOMweb query parameters ----------


def _guppy(adapter: Gen3Adapter, filter_json: Any) -> dict[str, Any]:
    """The JSON body the adapter POSTs to Guppy for one page of `filter_json`."""
    with respx.mock() as router:
        route = router.post("https://gen3.test/guppy/graphql").mock(
            return_value=httpx.Response(200, json={"data": {"imaging_series": []}})
        )
        translation = adapter.translate(parse_filter(filter_json))
        asyncio.run(_collect(adapter.search(translation, Page(size=10))))
        body: dict[str, Any] = json.loads(route.calls.last.request.content)
    return body


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


@pytest.mark.parametrize("value", PAYLOADS, ids=IDS)
def test_gen3_sends_values_only_as_graphql_variables(value: str) -> None:
    adapter = Gen3Adapter(SourceSettings(name="bih", adapter="gen3", url="https://gen3.test"))

    def request(v: str) -> dict[str, Any]:
        filter_json = {"AND": [{"=": {"patient_id": v}}, {"IN": {"study_description": [v]}}]}
        return _guppy(adapter, filter_json)

    hostile, benign = request(value), request("benign")
    assert hostile["query"] == benign["query"]  # the GraphQL text does not change
    assert list(_strings(hostile["variables"])).count(value) == 2  # values, never keys
    assert value not in set(_strings(benign["variables"]))


def test_gen3_refuses_config_that_would_splice_into_graphql() -> None:
    for options in ({"index": "imaging_series) { x } } query { y"}, {"field_map": {"sex": "a b"}}):
        with pytest.raises(Exception, match="GraphQL name"):
            Gen3Adapter(SourceSettings(name="g", adapter="gen3", url="https://g.test", **options))


@pytest.mark.parametrize("value", PAYLOADS, ids=IDS)
def test_tcia_sends_values_only_as_encoded_query_parameters(value: str) -> None:
    adapter = TciaAdapter(SourceSettings(name="tcia", adapter="tcia", url="https://tcia.test/v4"))
    filter_json = {"AND": [{"=": {"collection": "lidc_idri"}}, {"=": {"patient_id": value}}]}
    with respx.mock() as router:
        router.get("https://tcia.test/v4/getCollectionValues").mock(
            return_value=httpx.Response(200, json=[{"Collection": "LIDC-IDRI"}])
        )
        series = router.get("https://tcia.test/v4/getSeries").mock(
            return_value=httpx.Response(200, content=b"")
        )
        translation = adapter.translate(parse_filter(filter_json))
        assert asyncio.run(_collect(adapter.search(translation, Page(size=10)))) == []
    sent = series.calls.last.request
    assert sent.url.path == "/v4/getSeries"
    pushed = value == value.strip() and value != ""
    expected = [("Collection", "LIDC-IDRI"), *([("PatientID", value)] if pushed else [])]
    assert sorted(sent.url.params.multi_items()) == sorted(expected)
    _assert_encoded(sent)


@pytest.mark.parametrize("value", PAYLOADS, ids=IDS)
def test_dicomweb_sends_values_only_as_encoded_query_parameters(value: str) -> None:
    settings = SourceSettings(name="pacs", adapter="dicomweb", url="https://pacs.test/dicom-web")
    adapter = DicomwebAdapter(settings)
    filter_json = {"AND": [{"=": {"patient_id": value}}, {"IN": {"study_uid": [value]}}]}
    with respx.mock() as router:
        route = router.get("https://pacs.test/dicom-web/series").mock(
            return_value=httpx.Response(200, json=[])
        )
        translation = adapter.translate(parse_filter(filter_json))
        assert asyncio.run(_collect(adapter.search(translation, Page(size=10)))) == []
    sent = route.calls.last.request
    assert sent.url.path == "/dicom-web/series"
    params = dict(sent.url.params.multi_items())
    assert "StudyInstanceUID" not in params  # not a UID: the hub checks it, the server never
    assert params.get("PatientID", value) == value  # sent exactly, or kept residual
    assert sorted(set(params) - {"PatientID"}) == ["includefield", "limit", "offset"]
    assert translation.residual is not None
    _assert_encoded(sent)


def _assert_encoded(request: httpx.Request) -> None:
    """The raw request target carries no character a value could break it with."""
    target = request.url.raw_path
    assert not any(c in target for c in (b" ", b"\r", b"\n", b"\x00", b"#", b"'", b'"', b"\\"))
    assert target.count(b"?") == 1
