"""The hub's QIDO-RS face through the real `dicomweb-client`, against the hub's own
GraphQL answer for the same cohort on the small real-IDC index."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import requests
from dicomweb_client.api import DICOMwebClient

from adapters.dicom_json import decode_series
from hub.qido.params import MAX_RESULTS

FIELDS = "seriesUid studyUid patientId modality bodyPart sex age studyDate seriesDescription"
SERIES = """query($f: JSON, $after: String) { cohort(filter: $f) {
  counts { studies series }
  series(first: 1000, after: $after) {
    nodes { FIELDS studyDescription manufacturer instanceCount }
    pageInfo { hasNextPage endCursor } } } }""".replace("FIELDS", FIELDS)
SNAKE = {
    "seriesUid": "series_uid",
    "studyUid": "study_uid",
    "patientId": "patient_id",
    "bodyPart": "body_part",
    "studyDate": "study_date",
    "seriesDescription": "series_description",
    "studyDescription": "study_description",
    "instanceCount": "instance_count",
}


@pytest.fixture(scope="module")
def client(hub_url: str) -> DICOMwebClient:
    return DICOMwebClient(url=f"{hub_url}/dicomweb")


def graphql_series(hub_url: str, filter_json: Any) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Every series of the cohort as GraphQL gives it (canonical snake_case), in order."""
    nodes: list[dict[str, Any]] = []
    after = None
    while True:
        body = httpx.post(
            f"{hub_url}/graphql",
            json={"query": SERIES, "variables": {"f": filter_json, "after": after}},
            timeout=60,
        ).json()
        cohort = body["data"]["cohort"]
        page = cohort["series"]
        nodes += [{SNAKE.get(k, k): v for k, v in n.items()} for n in page["nodes"]]
        if not page["pageInfo"]["hasNextPage"]:
            return nodes, cohort["counts"]
        after = page["pageInfo"]["endCursor"]


def decoded(dataset: dict[str, Any]) -> dict[str, Any]:
    out = decode_series(dataset)
    out["study_date"] = out["study_date"].isoformat() if out["study_date"] else None
    return out


def test_series_search_equals_graphql(client: DICOMwebClient, hub_url: str) -> None:
    cohort = {"AND": [{"IN": {"modality": ["PT"]}}, {"=": {"sex": "female"}}]}
    expected, counts = graphql_series(hub_url, cohort)
    found = client.search_for_series(
        search_filters={"Modality": "PT", "PatientSex": "F"}, fields=["all"], get_remaining=True
    )
    assert 0 < counts["series"] == len(found) == len(expected)
    assert [decoded(d) for d in found] == [{k: n[k] for k in decoded(found[0])} for n in expected]


def test_study_search_aggregates_every_series(client: DICOMwebClient, hub_url: str) -> None:
    expected, _ = graphql_series(hub_url, {"=": {"collection": "c4kc_kits"}})
    studies = {n["study_uid"] for n in expected}
    # one page is narrowed by UID list: the c4kc_kits studies, asked through QIDO
    uids = sorted(studies)[:40]
    found = client.search_for_studies(
        search_filters={"StudyInstanceUID": ",".join(uids)}, fields=["StudyDescription"]
    )
    assert sorted(d["0020000D"]["Value"][0] for d in found) == uids
    for dataset in found:
        uid = dataset["0020000D"]["Value"][0]
        series = [n for n in expected if n["study_uid"] == uid]
        assert dataset["00201206"]["Value"] == [len(series)]
        assert dataset["00080061"]["Value"] == sorted({n["modality"] for n in series})
        assert dataset["00201208"]["Value"] == [sum(n["instance_count"] for n in series)]
        assert "00080060" not in dataset  # series attributes are not study attributes
        description = series[0]["study_description"]
        assert dataset["00081030"].get("Value") == ([description] if description else None)


def test_modalities_in_study_and_paging(client: DICOMwebClient, hub_url: str) -> None:
    expected, counts = graphql_series(hub_url, {"=": {"modality": "SEG"}})
    studies = client.search_for_studies(
        search_filters={"ModalitiesInStudy": "SEG"}, get_remaining=True, limit=250
    )
    assert len(studies) == counts["studies"] == len({n["study_uid"] for n in expected}) > 250
    assert all("SEG" in d["00080061"]["Value"] for d in studies)
    assert len({d["0020000D"]["Value"][0] for d in studies}) == len(studies)


def test_study_scoped_series_date_ranges_and_patient(client: DICOMwebClient, hub_url: str) -> None:
    expected, _ = graphql_series(
        hub_url,
        {"AND": [{">=": {"study_date": "2000-01-01"}}, {"<=": {"study_date": "2003-12-31"}}]},
    )
    found = client.search_for_series(
        search_filters={"StudyDate": "20000101-20031231"}, get_remaining=True
    )
    assert len(found) == len(expected) > 0
    first = expected[0]
    scoped = client.search_for_series(study_instance_uid=first["study_uid"])
    assert {d["0020000E"]["Value"][0] for d in scoped} == {
        n["series_uid"] for n in expected if n["study_uid"] == first["study_uid"]
    }
    assert "00100020" not in scoped[0]  # study attributes stay at the study level
    mine = client.search_for_studies(search_filters={"PatientID": first["patient_id"]})
    assert {d["00100020"]["Value"][0] for d in mine} == {first["patient_id"]}


NO_MATCH = [
    ("/studies", {"PatientID": "nobody"}),
    ("/series", {"SeriesInstanceUID": "1.2.3.4"}),
    ("/studies/1.2.3.4/series", {}),
]
"""A search on each route that matches nothing in the small corpus."""


@pytest.mark.parametrize(("path", "params"), NO_MATCH)
def test_no_match_is_200_and_an_empty_list(
    client: DICOMwebClient, hub_url: str, path: str, params: dict[str, str]
) -> None:
    response = httpx.get(f"{hub_url}/dicomweb{path}", params=params)
    assert response.status_code == 200 and response.json() == []
    assert response.headers["content-type"] == "application/dicom+json"
    if path == "/studies":
        assert client.search_for_studies(search_filters=params) == []
    elif path == "/series":
        assert client.search_for_series(search_filters=params) == []
    else:
        assert client.search_for_series(study_instance_uid="1.2.3.4") == []


def test_large_answers_are_capped_with_a_warning(hub_url: str) -> None:
    response = httpx.get(f"{hub_url}/dicomweb/series", params={"Modality": "SM"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/dicom+json"
    assert len(response.json()) == MAX_RESULTS
    assert "additional results" in response.headers["warning"]
    fuzzy = httpx.get(
        f"{hub_url}/dicomweb/series",
        params={"Modality": "SM", "limit": "2", "fuzzymatching": "true"},
    )
    assert len(fuzzy.json()) == 2 and "fuzzymatching" in fuzzy.headers["warning"]


@pytest.mark.parametrize(
    ("path", "params", "says"),
    [
        ("series", {"PatientID": "ACRIN*"}, "wildcard"),
        ("series", {"StudyDate": "2001-01-01"}, "YYYYMMDD"),
        ("series", {"StudyDate": "20011301"}, "not a calendar date"),
        ("series", {"PatientSex": "X"}, "M, F or O"),
        ("series", {"Colour": "red"}, "unknown query parameter"),
        ("series", {"ModalitiesInStudy": "CT"}, "study-level key"),
        ("studies", {"Modality": "CT"}, "series-level attribute"),
        ("series", {"PatientName": "Doe"}, "universal matching"),
        ("series", {"SeriesInstanceUID": "1.2.abc"}, "UIDs"),
        ("series", {"limit": "-1"}, "whole number"),
        ("series", {"includefield": "NotAKeyword"}, "includefield"),
        ("series", {"emptyvaluematching": "true"}, "not supported"),
        ("series", {"Modality": "x" * 2000}, "longer than"),
    ],
)
def test_bad_searches_are_400_and_say_why(
    client: DICOMwebClient, hub_url: str, path: str, params: dict[str, str], says: str
) -> None:
    response = httpx.get(f"{hub_url}/dicomweb/{path}", params=params)
    assert response.status_code == 400 and says in response.json()["error"]
    with pytest.raises(requests.HTTPError):
        client.search_for_series(search_filters=params) if path == "series" else (
            client.search_for_studies(search_filters=params)
        )


def test_universal_matching_and_includefield(hub_url: str) -> None:
    params = {"PatientName": "*", "Modality": "CT", "limit": "1", "includefield": "00180015"}
    (dataset,) = httpx.get(f"{hub_url}/dicomweb/series", params=params).json()
    assert "00180015" in dataset and "00080070" not in dataset  # asked for, not asked for
    assert dataset["00100010"] == {"vr": "PN"}  # a required key the hub does not hold
