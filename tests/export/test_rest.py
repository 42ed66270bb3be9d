"""`/export`, `/cohorts` and the saved-cohort GraphQL fields over HTTP, on a writable
copy of the small real-IDC index: streamed bodies, media types, file names, every bad
input a 4xx with a JSON error, and saved ids that are stable until the data changes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from hub.api import create_app
from tests.conftest import hub_config

CT = {"=": {"modality": "CT"}}
SAVE = """mutation($f: JSON, $t: String) { saveCohort(filter: $f, text: $t) {
  id filter text counts { series } sources dataVersions { source mode dataVersion }
  current { counts { series } dataChanged countsChanged } } }"""
SAVED = """query($id: ID!) { savedCohort(id: $id) { id counts { patients studies series } } }"""
COUNTS = """query($f: JSON) { cohort(filter: $f) { counts { patients studies series } } }"""


@pytest.fixture(scope="module")
def client(data_dir: Path) -> Iterator[TestClient]:
    with TestClient(create_app(hub_config(data_dir))) as client:
        yield client


def graphql(client: TestClient, query: str, **variables: object) -> dict[str, object]:
    response = client.post("/graphql", json={"query": query, "variables": variables})
    assert response.status_code == 200
    body: dict[str, object] = response.json()
    return body


def test_export_streams_ndjson_with_a_file_name(client: TestClient) -> None:
    counts = graphql(client, COUNTS, f=CT)["data"]["cohort"]["counts"]  # type: ignore[index]
    response = client.get("/export", params={"format": "ndjson", "filter": json.dumps(CT)})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-ndjson"
    disposition = response.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="cohort-') and disposition.endswith(
        '.ndjson"'
    )
    lines = response.text.splitlines()
    assert len(lines) == counts["series"] == int(response.headers["x-cohort-series"])  # type: ignore[index]
    assert {json.loads(line)["modality"] for line in lines} == {"CT"}


def test_post_takes_the_filter_as_an_object(client: TestClient) -> None:
    body = {"format": "csv", "filter": CT, "limit": 10}
    response = client.post("/export", json=body)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert len(response.text.splitlines()) == 11  # header + 10
    s5cmd = client.post("/export?format=s5cmd", json={"filter": CT, "limit": 3})
    assert s5cmd.text.count("cp s3://") == 3


@pytest.mark.parametrize(
    ("params", "status", "says"),
    [
        ({"format": "xml"}, 400, "unknown export format"),
        ({}, 400, "`format` is required"),
        ({"format": "csv", "filter": "{"}, 400, "not valid JSON"),
        ({"format": "csv", "filter": '{"=": {"modalty": "CT"}}'}, 400, "$.=.modalty"),
        ({"format": "csv", "limit": "ten"}, 400, "limit"),
        ({"format": "csv", "limit": "0"}, 400, "at least 1"),
        ({"format": "tcia"}, 400, "none is configured"),
        ({"format": "s5cmd", "source": "nope"}, 400, "unknown source"),
        ({"format": "csv", "source": "idc"}, 400, "`source` selects"),
        ({"format": "csv", "colour": "red"}, 400, "unknown parameter"),
        ({"format": "csv", "cohort": "../../etc/passwd"}, 400, "32 lower-case hex"),
        ({"format": "csv", "cohort": "0" * 32}, 404, "no saved cohort"),
    ],
)
def test_bad_export_requests_say_why(
    client: TestClient, params: dict[str, str], status: int, says: str
) -> None:
    response = client.get("/export", params=params)
    assert response.status_code == status
    assert says in response.json()["error"]


def test_bad_post_bodies_are_400(client: TestClient) -> None:
    assert client.post("/export", content=b"{not json").status_code == 400
    assert client.post("/export", json=[1, 2]).status_code == 400
    assert client.post("/export", json={"format": 7}).status_code == 400
    assert client.post("/cohorts", json={"filter": CT, "extra": 1}).status_code == 400
    assert client.post("/cohorts", json={"filter": {"=": {}}}).status_code == 400


def test_saved_cohort_id_is_stable_and_its_manifest_reproducible(client: TestClient) -> None:
    first = client.post("/cohorts", json={"filter": {"AND": [CT, {">=": {"age": 60}}]}})
    assert first.status_code == 201
    saved = first.json()
    # the same cohort written differently (order, spacing of text) is the same cohort
    again = client.post(
        "/cohorts", json={"filter": {"AND": [{">=": {"age": 60}}, {"IN": {"modality": ["CT"]}}]}}
    ).json()
    assert saved["id"] != again["id"]  # IN is not =: a different question
    same = client.post("/cohorts", json={"filter": {"AND": [{">=": {"age": 60}}, CT]}}).json()
    assert same["id"] == saved["id"] and same["created_at"] == saved["created_at"]
    assert saved["sources"] == ["idc"] and saved["data_versions"][0]["data_version"]
    assert client.get(f"/cohorts/{saved['id']}").json() == saved
    rerun = client.get(f"/cohorts/{saved['id']}/rerun").json()
    assert rerun["then"] == rerun["now"] and rerun["data_changed"] is False

    by_id = client.get("/export", params={"format": "s5cmd", "cohort": saved["id"]})
    by_filter = client.get(
        "/export", params={"format": "s5cmd", "filter": json.dumps(saved["filter"])}
    )
    assert by_id.text == by_filter.text and by_id.text.count("\n") == saved["counts"]["series"]
    assert by_id.headers["x-cohort-data-changed"] == "false"
    assert f'filename="cohort-{saved["id"]}.s5cmd"' in by_id.headers["content-disposition"]


def test_graphql_save_and_fetch_a_cohort(client: TestClient) -> None:
    saved = graphql(client, SAVE, f=CT, t="  chest ")["data"]["saveCohort"]  # type: ignore[index]
    assert saved["text"] == "chest" and saved["current"]["dataChanged"] is False  # type: ignore[index]
    rest = client.post("/cohorts", json={"filter": CT, "text": "chest"}).json()
    assert rest["id"] == saved["id"]  # type: ignore[index]
    found = graphql(client, SAVED, id=saved["id"])["data"]["savedCohort"]  # type: ignore[index]
    assert found["counts"]["series"] == saved["counts"]["series"]  # type: ignore[index]
    assert graphql(client, SAVED, id="f" * 32)["data"] == {"savedCohort": None}
    bad = graphql(client, SAVED, id="../x")
    assert "32 lower-case hex" in bad["errors"][0]["message"]  # type: ignore[index]


def test_mutations_are_refused_over_get(client: TestClient) -> None:
    response = client.get("/graphql", params={"query": "mutation { saveCohort { id } }"})
    assert response.json()["errors"][0]["message"] == "mutations must be sent with POST"


def test_rerun_says_when_the_data_changed(data_dir: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "hub"
    shutil.copytree(data_dir, copy)
    with TestClient(create_app(hub_config(copy))) as client:
        saved = client.post("/cohorts", json={"filter": CT}).json()
    current = copy / "index" / (copy / "index" / "CURRENT").read_text().strip()
    meta = json.loads((current / "generation.json").read_text())
    meta["snapshots"][0]["data_version"] = "idc-index-data 99.0.0"
    (current / "generation.json").write_text(json.dumps(meta))
    with TestClient(create_app(hub_config(copy))) as client:
        rerun = client.get(f"/cohorts/{saved['id']}/rerun").json()
        assert rerun["data_changed"] is True and rerun["changed_sources"] == ["idc"]
        assert rerun["counts_changed"] is False
        export = client.get("/export", params={"format": "csv", "cohort": saved["id"]})
        assert export.headers["x-cohort-data-changed"] == "true"
        resaved = client.post("/cohorts", json={"filter": CT}).json()
        assert resaved["id"] != saved["id"]
